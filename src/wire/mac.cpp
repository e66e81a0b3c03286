// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/mac.hpp"

#include <sodium.h>

#include <algorithm>
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
  constexpr const char* kHowTo = "make a key with: head -c 32 /dev/urandom > FILE; chmod 600 FILE";
  if (secret_file_bytes.size() != kSecretBytes)
    return make_error("cluster secret has {} bytes; it must be exactly {} random bytes ({})",
                      secret_file_bytes.size(), kSecretBytes, kHowTo);
  // 32 random bytes are all printable with probability (98/256)^32 < 1e-13: such a file was typed
  // or generated as text (a passphrase, hex or base64 of fewer random bits).
  const bool all_text = std::all_of(secret_file_bytes.begin(), secret_file_bytes.end(), [](std::uint8_t b) {
    return (b >= 0x20 && b < 0x7f) || b == '\t' || b == '\n' || b == '\r';
  });
  if (all_text)
    return make_error("cluster secret is printable text, a passphrase rather than a key; {}", kHowTo);
  return ok_status();
}

Key derive_subkey(const Key& cluster_key, std::string_view purpose) {
  Mac m(cluster_key);
  constexpr char kDomain[] = "osmo-subkey-v1";
  m.update({reinterpret_cast<const std::uint8_t*>(kDomain), sizeof kDomain - 1});
  const auto len = static_cast<std::uint8_t>(purpose.size() > 255 ? 255 : purpose.size());
  m.update({&len, 1});
  m.update({reinterpret_cast<const std::uint8_t*>(purpose.data()), len});
  const MacTag t = m.final();
  Key k{};
  std::memcpy(k.data(), t.data(), k.size());
  return k;
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
