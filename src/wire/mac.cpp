// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/mac.hpp"

#include <sodium.h>

#include <cstring>

namespace osmo::wire {
namespace {

// sodium_init() picks the fastest implementation for this CPU; it is idempotent and
// thread-safe, and must run before any other libsodium call.
void ensure_sodium() {
  static const bool initialized = [] { return sodium_init() >= 0; }();
  (void)initialized;
}

static_assert(crypto_generichash_BYTES_MAX >= kMacBytes &&
              crypto_generichash_BYTES_MIN <= kMacBytes);
static_assert(crypto_generichash_KEYBYTES_MAX >= kKeyBytes);

// Domain separation: the derived key is unrelated to any other hash of the same secret.
constexpr char kKeyDomain[] = "osmo-cluster-key-v1";

}  // namespace

Key derive_key(std::span<const std::uint8_t> secret_file_bytes) {
  ensure_sodium();
  Key key{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, key.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kKeyDomain),
                            sizeof kKeyDomain - 1);
  crypto_generichash_update(&st, secret_file_bytes.data(), secret_file_bytes.size());
  crypto_generichash_final(&st, key.data(), key.size());
  sodium_memzero(&st, sizeof st);
  return key;
}

Status check_secret(std::span<const std::uint8_t> secret_file_bytes) {
  if (secret_file_bytes.empty()) return make_error("cluster secret is empty");
  if (secret_file_bytes.size() < kMinSecretBytes)
    return make_error("cluster secret is {} bytes; at least {} are required",
                      secret_file_bytes.size(), kMinSecretBytes);
  return ok_status();
}

Result<Key> key_from_bytes(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kKeyBytes)
    return make_error("MAC key is {} bytes; expected {}", bytes.size(), kKeyBytes);
  Key k{};
  std::memcpy(k.data(), bytes.data(), k.size());
  return k;
}

MacTag mac(const Key& key, std::span<const std::uint8_t> bytes) {
  ensure_sodium();
  MacTag tag{};
  crypto_generichash(tag.data(), tag.size(), bytes.data(), bytes.size(), key.data(), key.size());
  return tag;
}

bool verify_mac(const Key& key, std::span<const std::uint8_t> bytes,
                std::span<const std::uint8_t> tag) {
  if (tag.size() != kMacBytes) return false;
  MacTag expected = mac(key, bytes);
  return sodium_memcmp(expected.data(), tag.data(), kMacBytes) == 0;
}

Mac::Mac(const Key& key) {
  static_assert(sizeof(crypto_generichash_state) <= sizeof(state_));
  ensure_sodium();
  crypto_generichash_init(reinterpret_cast<crypto_generichash_state*>(state_.data()), key.data(),
                          key.size(), kMacBytes);
}

void Mac::update(std::span<const std::uint8_t> bytes) {
  crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_.data()),
                            bytes.data(), bytes.size());
}

MacTag Mac::final() {
  MacTag tag{};
  crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(state_.data()), tag.data(),
                           tag.size());
  sodium_memzero(state_.data(), state_.size());
  return tag;
}

}  // namespace osmo::wire
