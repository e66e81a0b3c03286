// SPDX-License-Identifier: GPL-2.0-or-later
// Writer/Reader: little-endian layout, varint edge cases, limits, and that a Reader never reads
// past its end (sticky failure).
#include "wire/bytes.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace osmo::wire {
namespace {

TEST(Bytes, IntegersAreLittleEndian) {
  Writer w;
  w.u16(0x0102);
  w.u32(0x03040506);
  w.u64(0x0708090a0b0c0d0eULL);
  std::vector<std::uint8_t> expect = {0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e,
                                      0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07};
  EXPECT_EQ(w.data(), expect);
  Reader r(w.data());
  EXPECT_EQ(r.u16(), 0x0102);
  EXPECT_EQ(r.u32(), 0x03040506u);
  EXPECT_EQ(r.u64(), 0x0708090a0b0c0d0eULL);
  EXPECT_TRUE(r.at_end());
}

TEST(Bytes, VarintRoundTripsEdgeValues) {
  const std::uint64_t values[] = {0,
                                  1,
                                  127,
                                  128,
                                  300,
                                  16383,
                                  16384,
                                  (1ULL << 35) + 7,
                                  std::numeric_limits<std::uint64_t>::max()};
  for (std::uint64_t v : values) {
    Writer w;
    w.varint(v);
    EXPECT_EQ(w.size(), varint_size(v)) << v;
    Reader r(w.data());
    EXPECT_EQ(r.varint(), v);
    EXPECT_TRUE(r.at_end()) << v;
  }
  Writer w;
  w.varint(300);
  EXPECT_EQ(w.data(), (std::vector<std::uint8_t>{0xac, 0x02}));
}

TEST(Bytes, VarintRejectsOverlongAndOverflow) {
  std::vector<std::uint8_t> eleven(11, 0x80);
  eleven.back() = 0x00;
  Reader a(eleven);
  a.varint();
  EXPECT_FALSE(a.ok());

  // 10th byte carrying more than the top bit of a 64-bit value.
  std::vector<std::uint8_t> overflow(9, 0xff);
  overflow.push_back(0x02);
  Reader b(overflow);
  b.varint();
  EXPECT_FALSE(b.ok());

  std::vector<std::uint8_t> unterminated = {0x80, 0x80};
  Reader c(unterminated);
  c.varint();
  EXPECT_FALSE(c.ok());
}

TEST(Bytes, ReaderFailureIsStickyAndNeverReadsPastTheEnd) {
  std::vector<std::uint8_t> three = {1, 2, 3};
  Reader r(three);
  EXPECT_EQ(r.u16(), 0x0201);
  EXPECT_EQ(r.u32(), 0u);  // only one byte left
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error(), nullptr);
  EXPECT_EQ(r.u8(), 0);  // the remaining byte is not handed out after a failure
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_TRUE(r.raw(1).empty());
}

TEST(Bytes, LengthPrefixedStringsHonourTheirLimit) {
  Writer w;
  w.str("hello");
  w.bytes(std::vector<std::uint8_t>{9, 8, 7});
  Reader r(w.data());
  EXPECT_EQ(r.str(5), "hello");
  auto b = r.bytes(3);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[2], 7);
  EXPECT_TRUE(r.at_end());

  Reader too_long(w.data());
  EXPECT_TRUE(too_long.str(4).empty());
  EXPECT_FALSE(too_long.ok());

  // A length prefix that claims more than the input holds.
  std::vector<std::uint8_t> lying = {50, 'a', 'b'};
  Reader l(lying);
  EXPECT_TRUE(l.str(100).empty());
  EXPECT_FALSE(l.ok());
}

TEST(Bytes, WriterStopsAtItsLimit) {
  Writer w(5);
  w.u32(1);
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(w.remaining(), 1u);
  w.u16(2);  // would exceed
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 4u);  // nothing partial was written
  w.u8(3);                  // sticky
  EXPECT_EQ(w.size(), 4u);
}

TEST(Bytes, DoublesKeepTheirBits) {
  Writer w;
  w.f64(1.5);
  w.f64(-0.0);
  Reader r(w.data());
  EXPECT_EQ(r.f64(), 1.5);
  double z = r.f64();
  EXPECT_EQ(z, 0.0);
  EXPECT_TRUE(std::signbit(z));
}

TEST(Bytes, PatchU32RewritesInPlace) {
  Writer w;
  w.u32(0);
  w.u8(9);
  w.patch_u32(0, 0xdeadbeef);
  Reader r(w.data());
  EXPECT_EQ(r.u32(), 0xdeadbeefu);
  w.patch_u32(3, 1);  // would run past the end
  EXPECT_FALSE(w.ok());
}

}  // namespace
}  // namespace osmo::wire
