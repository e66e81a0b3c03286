// SPDX-License-Identifier: GPL-2.0-or-later
// MAC and key derivation: known answers (computed independently with Python's hashlib.blake2b),
// tamper detection, and secret checks.
#include "wire/mac.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace osmo::wire {
namespace {

std::string hex(std::span<const std::uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

Key test_key() {
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i);
  return k;
}

TEST(Mac, KnownAnswerKeyedBlake2b256) {
  // python3: hashlib.blake2b(b'osmo', key=bytes(range(32)), digest_size=32).hexdigest()
  EXPECT_EQ(hex(mac(test_key(), bytes_of("osmo"))),
            "3ecc2691f58ed805ffdb5261406d534a315c69c70dc09d910a62963dd15f2262");
}

TEST(Mac, DeriveKeyKnownAnswerAndSeparation) {
  // python3: hashlib.blake2b(b'osmo-cluster-key-v1' + b'0123456789abcdef', digest_size=32)
  EXPECT_EQ(hex(derive_key(bytes_of("0123456789abcdef"))),
            "30ce959d97dc1da5c24e639e999f9380fa2b2331e1337043fb345afceae0876d");
  EXPECT_NE(derive_key(bytes_of("0123456789abcdef")), derive_key(bytes_of("0123456789abcdef\n")));
}

TEST(Mac, VerifyDetectsAnyChange) {
  std::vector<std::uint8_t> msg(100, 0x5a);
  MacTag tag = mac(test_key(), msg);
  EXPECT_TRUE(verify_mac(test_key(), msg, tag));
  for (std::size_t i = 0; i < msg.size(); i += 7) {
    auto m = msg;
    m[i] ^= 0x01;
    EXPECT_FALSE(verify_mac(test_key(), m, tag)) << i;
  }
  auto t = tag;
  t[31] ^= 0x80;
  EXPECT_FALSE(verify_mac(test_key(), msg, t));
  Key other = test_key();
  other[0] ^= 1;
  EXPECT_FALSE(verify_mac(other, msg, tag));
  EXPECT_FALSE(verify_mac(test_key(), msg, std::span(tag).first(16)));  // truncated tag
}

TEST(Mac, IncrementalEqualsOneShot) {
  std::vector<std::uint8_t> a(37, 1), b(1000, 2);
  std::vector<std::uint8_t> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  Mac m(test_key());
  m.update(a);
  m.update(b);
  EXPECT_EQ(m.final(), mac(test_key(), ab));
}

TEST(Mac, SecretChecks) {
  EXPECT_FALSE(check_secret({}).ok());
  std::vector<std::uint8_t> random_key(kSecretBytes);
  for (std::size_t i = 0; i < random_key.size(); ++i) random_key[i] = static_cast<std::uint8_t>(i * 37 + 3);
  EXPECT_TRUE(check_secret(random_key).ok());
  // Not 32 bytes: too short, or a key with a newline appended.
  auto st = check_secret(std::span(random_key).first(31));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("exactly 32"), std::string::npos) << st.error().message;
  auto longer = random_key;
  longer.push_back('\n');
  EXPECT_FALSE(check_secret(longer).ok());
  // A passphrase of exactly 32 printable bytes (hex of 128 bits, typed text) is refused, and the
  // message says how to make a key.
  for (const char* text : {"0123456789abcdef0123456789abcdef", "correct horse battery staple!!\n\n"}) {
    auto p = check_secret(bytes_of(text));
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_NE(p.error().message.find("passphrase"), std::string::npos) << p.error().message;
    EXPECT_NE(p.error().message.find("head -c 32 /dev/urandom"), std::string::npos) << p.error().message;
  }

  EXPECT_FALSE(key_from_bytes(std::span(random_key).first(16)).ok());
  std::vector<std::uint8_t> k32(32, 3);
  auto k = key_from_bytes(k32);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ((*k)[31], 3);
}

TEST(Mac, SubkeysArePerPurpose) {
  const Key a = derive_subkey(test_key(), "gossip-datagram-v2");
  EXPECT_EQ(a, derive_subkey(test_key(), "gossip-datagram-v2"));
  EXPECT_NE(a, derive_subkey(test_key(), "gossip-datagram-v3"));
  EXPECT_NE(a, test_key());
  Key other = test_key();
  other[0] ^= 1;
  EXPECT_NE(a, derive_subkey(other, "gossip-datagram-v2"));
}

}  // namespace
}  // namespace osmo::wire
