// SPDX-License-Identifier: GPL-2.0-or-later
// Sealed channel frames, attacked in memory: a flipped byte (payload, header or tag), a frame
// replayed, two frames swapped, a frame of the other direction, a header announcing too much.
// Each is refused, and the opener stays refused afterwards. Both suites.
#include "wire/sealed_channel.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <string>
#include <vector>

namespace osmo::wire {
namespace {

using Frame = std::vector<std::uint8_t>;

Key key_of(std::uint8_t b) {
  Key k;
  k.fill(b);
  return k;
}

Frame seal(ChannelSealer& s, std::string_view text, ChannelFrame type = ChannelFrame::kData) {
  Frame f(kChannelHeaderBytes + text.size() + kChannelTagBytes);
  std::memcpy(f.data() + kChannelHeaderBytes, text.data(), text.size());
  f.resize(s.seal(type, f.data(), static_cast<std::uint32_t>(text.size())));
  return f;
}

// Opens a frame as the pump does: header first, then the whole frame. Returns the plaintext or
// the error.
Result<std::string> open(ChannelOpener& o, Frame f) {
  std::uint32_t n = 0;
  ChannelFrame type{};
  OSMO_TRY(o.check_header(f.data(), &n, &type));
  if (f.size() != kChannelHeaderBytes + n + kChannelTagBytes) return make_error("size");
  OSMO_TRY(o.open(f.data(), n));
  return std::string(reinterpret_cast<const char*>(f.data() + kChannelHeaderBytes), n);
}

class SealedChannelTest : public ::testing::TestWithParam<SealSuite> {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    if (GetParam() == SealSuite::kAes256Gcm && !crypto_aead_aes256gcm_is_available())
      GTEST_SKIP() << "no AES-NI here";
  }
};

TEST_P(SealedChannelTest, RoundTripAndCiphertextIsNotPlaintext) {
  ChannelSealer s(key_of(1), GetParam());
  ChannelOpener o(key_of(1), GetParam());
  const std::string secret = "the job's environment: PASSWORD=hunter2";
  Frame f = seal(s, secret);
  EXPECT_EQ(std::string(f.begin(), f.end()).find("hunter2"), std::string::npos);
  auto a = open(o, f);
  ASSERT_TRUE(a.ok()) << a.error().str();
  EXPECT_EQ(*a, secret);
  auto b = open(o, seal(s, ""));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, "");
  EXPECT_EQ(o.seq(), 2u);
}

TEST_P(SealedChannelTest, AFlippedByteAnywhereIsRefusedAndTheStreamStaysDead) {
  for (std::size_t at :
       {std::size_t{0}, std::size_t{4}, std::size_t{8}, std::size_t{12}, std::size_t{20}}) {
    ChannelSealer s(key_of(2), GetParam());
    ChannelOpener o(key_of(2), GetParam());
    Frame f = seal(s, "0123456789");
    ASSERT_LT(at, f.size());
    f[at] ^= (at == 0 ? 0x01 : 0x80);  // byte 0: the length, longer by one
    auto r = open(o, f);
    EXPECT_FALSE(r.ok()) << "flip at " << at;
    // A good frame after a bad one is refused too: the stream is dead.
    EXPECT_FALSE(open(o, seal(s, "after")).ok());
  }
}

TEST_P(SealedChannelTest, ReplayedReorderedReflectedFramesAreRefused) {
  {
    ChannelSealer s(key_of(3), GetParam());
    ChannelOpener o(key_of(3), GetParam());
    Frame first = seal(s, "first");
    ASSERT_TRUE(open(o, first).ok());
    EXPECT_FALSE(open(o, first).ok()) << "replay";
  }
  {
    ChannelSealer s(key_of(3), GetParam());
    ChannelOpener o(key_of(3), GetParam());
    Frame first = seal(s, "first");
    Frame second = seal(s, "second");
    EXPECT_FALSE(open(o, second).ok()) << "reorder";
    (void)first;
  }
  {
    // The other direction has another key: a frame reflected back to its sender is refused.
    ChannelSealer out(key_of(4), GetParam());
    ChannelOpener in(key_of(5), GetParam());
    EXPECT_FALSE(open(in, seal(out, "reflected")).ok());
  }
}

TEST_P(SealedChannelTest, HeaderIsCheckedBeforeTheFrameIsRead) {
  ChannelOpener o(key_of(6), GetParam());
  std::uint8_t hdr[kChannelHeaderBytes] = {0, 0, 0x10, 0, 0, 0, 0, 0};  // 1 MiB announced
  std::uint32_t n = 0;
  ChannelFrame t{};
  EXPECT_FALSE(o.check_header(hdr, &n, &t).ok());
  std::uint8_t bad_type[kChannelHeaderBytes] = {1, 0, 0, 0, 7, 0, 0, 0};
  EXPECT_FALSE(o.check_header(bad_type, &n, &t).ok());
  std::uint8_t end_with_data[kChannelHeaderBytes] = {1, 0, 0, 0, 1, 0, 0, 0};
  EXPECT_FALSE(o.check_header(end_with_data, &n, &t).ok());
  std::uint8_t max[kChannelHeaderBytes] = {0, 0, 4, 0, 0, 0, 0, 0};  // exactly 256 KiB
  EXPECT_TRUE(o.check_header(max, &n, &t).ok());
  EXPECT_EQ(n, kMaxChannelPayload);
}

TEST_P(SealedChannelTest, ATypeChangedFromDataToEndIsRefused) {
  ChannelSealer s(key_of(7), GetParam());
  ChannelOpener o(key_of(7), GetParam());
  Frame f = seal(s, "");
  f[4] = static_cast<std::uint8_t>(ChannelFrame::kEnd);  // a forged end: truncation in disguise
  EXPECT_FALSE(open(o, f).ok());
}

INSTANTIATE_TEST_SUITE_P(Suites, SealedChannelTest,
                         ::testing::Values(SealSuite::kAes256Gcm, SealSuite::kChaCha20Poly1305),
                         [](const auto& p) { return std::string(seal_suite_name(p.param)); });

}  // namespace
}  // namespace osmo::wire
