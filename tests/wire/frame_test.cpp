// SPDX-License-Identifier: GPL-2.0-or-later
// Frames: layout on the wire, and each rejection reason (size, magic, version, length, MAC).
#include "wire/frame.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace osmo::wire {
namespace {

constexpr std::uint32_t kTestMagic = 0x54534554;  // "TEST"

Key key_a() {
  Key k{};
  k.fill(0xa5);
  return k;
}

FrameSpec spec() {
  return FrameSpec{kTestMagic, 1, 2, 1000};
}

std::vector<std::uint8_t> sample(std::uint8_t version = 1) {
  FrameHeader h;
  h.magic = kTestMagic;
  h.version = version;
  h.type = 7;
  std::vector<std::uint8_t> body = {1, 2, 3, 4, 5};
  return seal_frame(key_a(), h, body);
}

TEST(Frame, LayoutMatchesTheDocumentation) {
  auto f = sample();
  ASSERT_EQ(f.size(), kFrameHeaderBytes + 5 + kMacBytes);
  EXPECT_EQ(f[0], 0x54);  // magic, little-endian
  EXPECT_EQ(f[3], 0x54);
  EXPECT_EQ(f[4], 1);  // version
  EXPECT_EQ(f[5], 7);  // type
  EXPECT_EQ(f[6], 0);  // flags
  EXPECT_EQ(f[8], 5);  // body_len
  EXPECT_EQ(f[12], 1);
  EXPECT_TRUE(verify_mac(key_a(), std::span(f).first(17), std::span(f).subspan(17)));
}

TEST(Frame, OpensWhatItSealed) {
  auto f = sample(2);
  OpenedFrame o;
  ASSERT_EQ(open_frame(key_a(), spec(), f, &o), FrameStatus::kOk);
  EXPECT_EQ(o.header.type, 7);
  EXPECT_EQ(o.header.version, 2);
  ASSERT_EQ(o.body.size(), 5u);
  EXPECT_EQ(o.body[4], 5);
}

TEST(Frame, RejectsEachKindOfBadFrame) {
  OpenedFrame o;
  auto f = sample();

  EXPECT_EQ(open_frame(key_a(), spec(), std::span(f).first(20), &o), FrameStatus::kMalformed);

  auto magic = f;
  magic[0] ^= 1;
  EXPECT_EQ(open_frame(key_a(), spec(), magic, &o), FrameStatus::kBadMagic);

  EXPECT_EQ(open_frame(key_a(), spec(), sample(3), &o), FrameStatus::kBadVersion);
  EXPECT_EQ(open_frame(key_a(), spec(), sample(0), &o), FrameStatus::kBadVersion);

  auto longer = f;
  longer.push_back(0);  // body_len no longer matches the size
  EXPECT_EQ(open_frame(key_a(), spec(), longer, &o), FrameStatus::kMalformed);

  auto body = f;
  body[13] ^= 0x40;
  EXPECT_EQ(open_frame(key_a(), spec(), body, &o), FrameStatus::kBadMac);

  Key other = key_a();
  other[5] = 0;
  EXPECT_EQ(open_frame(other, spec(), f, &o), FrameStatus::kBadMac);

  FrameSpec tiny = spec();
  tiny.max_body_bytes = 4;
  EXPECT_EQ(open_frame(key_a(), tiny, f, &o), FrameStatus::kMalformed);
}

TEST(Frame, DecodeHeaderNeedsTwelveBytes) {
  auto f = sample();
  FrameHeader h;
  EXPECT_FALSE(decode_header(std::span(f).first(11), &h));
  ASSERT_TRUE(decode_header(f, &h));
  EXPECT_EQ(h.magic, kTestMagic);
  EXPECT_EQ(h.body_len, 5u);
}

}  // namespace
}  // namespace osmo::wire
