// SPDX-License-Identifier: GPL-2.0-or-later
// Sealed datagrams: round trip in both modes, the body hidden when sealed, every byte covered by
// the tag, a mode mismatch told apart from a forgery, and the magic and version read first.
#include "wire/sealed_datagram.hpp"

#include <gtest/gtest.h>

#include <string>

namespace osmo::wire {
namespace {

Key test_key() {
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(0xa0 + i);
  return k;
}

const DatagramSpec kSpec{0x11223344, 2, 64, 1400};

std::vector<std::uint8_t> seal(DatagramMode mode, const std::string& body,
                               const std::string& sender = "node-7") {
  DatagramHeader h;
  h.type = 5;
  h.mode = mode;
  h.sent_ms = 1'765'000'123'456;
  h.sender = sender;
  h.nonce = random_datagram_nonce();
  return seal_datagram(test_key(), kSpec, h,
                       {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
}

bool contains(const std::vector<std::uint8_t>& d, const std::string& s) {
  return std::string(d.begin(), d.end()).find(s) != std::string::npos;
}

TEST(SealedDatagram, RoundTripBothModes) {
  for (DatagramMode mode : {DatagramMode::kSealed, DatagramMode::kClear}) {
    auto d = seal(mode, "the body: load 0.75");
    EXPECT_EQ(d.size(), datagram_overhead(6) + 19);
    OpenedDatagram o;
    ASSERT_EQ(open_datagram(test_key(), kSpec, mode, d, &o), DatagramStatus::kOk);
    EXPECT_EQ(o.header.type, 5);
    EXPECT_EQ(o.header.sender, "node-7");
    EXPECT_EQ(o.header.sent_ms, 1'765'000'123'456u);
    EXPECT_EQ(std::string(o.body.begin(), o.body.end()), "the body: load 0.75");
    EXPECT_EQ(contains(d, "node-7"), mode == DatagramMode::kClear);
    EXPECT_EQ(contains(d, "load 0.75"), mode == DatagramMode::kClear);
  }
}

TEST(SealedDatagram, SameContentNeverTheSameBytes) {
  auto a = seal(DatagramMode::kSealed, "same");
  auto b = seal(DatagramMode::kSealed, "same");
  EXPECT_NE(a, b);  // fresh nonce, so fresh ciphertext
}

TEST(SealedDatagram, EveryByteIsCovered) {
  for (DatagramMode mode : {DatagramMode::kSealed, DatagramMode::kClear}) {
    auto d = seal(mode, "a body of some length");
    for (std::size_t i = 0; i < d.size(); ++i) {
      auto bad = d;
      bad[i] ^= 0x01;
      OpenedDatagram o;
      auto st = open_datagram(test_key(), kSpec, mode, bad, &o);
      if (i < 4)
        EXPECT_EQ(st, DatagramStatus::kBadMagic) << i;
      else if (i == 4)
        EXPECT_EQ(st, DatagramStatus::kBadVersion) << i;
      else if (i == 6 || i == 7)
        EXPECT_EQ(st, DatagramStatus::kMalformed) << i;  // mode 1<->0/3, reserved nonzero
      else
        EXPECT_EQ(st, DatagramStatus::kBadMac) << i;
    }
    // Truncated or extended.
    OpenedDatagram o;
    EXPECT_EQ(open_datagram(test_key(), kSpec, mode, std::span(d).first(d.size() - 1), &o),
              DatagramStatus::kBadMac);
    auto longer = d;
    longer.push_back(0);
    EXPECT_EQ(open_datagram(test_key(), kSpec, mode, longer, &o), DatagramStatus::kBadMac);
    EXPECT_EQ(open_datagram(test_key(), kSpec, mode, std::span(d).first(20), &o),
              DatagramStatus::kMalformed);
  }
}

TEST(SealedDatagram, ModeMismatchOnlyForAuthenticDatagrams) {
  OpenedDatagram o;
  EXPECT_EQ(
      open_datagram(test_key(), kSpec, DatagramMode::kSealed, seal(DatagramMode::kClear, "x"), &o),
      DatagramStatus::kModeMismatch);
  EXPECT_EQ(
      open_datagram(test_key(), kSpec, DatagramMode::kClear, seal(DatagramMode::kSealed, "x"), &o),
      DatagramStatus::kModeMismatch);
  Key other = test_key();
  other[3] ^= 0x40;
  EXPECT_EQ(open_datagram(other, kSpec, DatagramMode::kClear, seal(DatagramMode::kSealed, "x"), &o),
            DatagramStatus::kBadMac);
}

}  // namespace
}  // namespace osmo::wire
