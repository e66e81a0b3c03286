// SPDX-License-Identifier: GPL-2.0-or-later
// Message authentication for every osmo wire format. The cluster secret (a file shared by all
// nodes) is hashed into a 32-byte key; every datagram and stream frame carries a 32-byte keyed
// BLAKE2b tag (libsodium crypto_generichash) over all its bytes. Keyed BLAKE2b is a PRF/MAC by
// design (no HMAC construction needed), is fast in software and comes with libsodium, which we
// link anyway for image encryption.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.hpp"

namespace osmo::wire {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kMacBytes = 32;
// The cluster secret is a key, not a passphrase: exactly 32 random bytes (256 bits), as
// `head -c 32 /dev/urandom` makes. Callers refuse any other file before deriving (check_secret).
inline constexpr std::size_t kSecretBytes = 32;

using Key = std::array<std::uint8_t, kKeyBytes>;
using MacTag = std::array<std::uint8_t, kMacBytes>;

// Key = BLAKE2b-256("osmo-cluster-key-v1" || the secret file's bytes as they are). The
// bytes are used verbatim so every node derives the same key from the same file. Callers must
// refuse a secret that check_secret refuses first.
Key derive_key(std::span<const std::uint8_t> secret_file_bytes);

// Refuses a secret that is not exactly kSecretBytes long, or whose bytes are all printable text
// (a passphrase: far less entropy than 256 bits, and open to guessing offline from one captured
// datagram). The message says how to make a key.
Status check_secret(std::span<const std::uint8_t> secret_file_bytes);

// A key for one purpose (e.g. "gossip-datagram-v2"): BLAKE2b-256 keyed with the cluster key over
// ("osmo-subkey-v1" || u8 length || purpose). Keys of different purposes are unrelated, so a
// message of one protocol can never be taken for one of another.
Key derive_subkey(const Key& cluster_key, std::string_view purpose);

// Copies a 32-byte key held in a vector (e.g. Config::key); fails on any other size.
Result<Key> key_from_bytes(std::span<const std::uint8_t> bytes);

MacTag mac(const Key& key, std::span<const std::uint8_t> bytes);

// Constant-time comparison of the expected tag with `tag`; false if `tag` has the wrong size.
bool verify_mac(const Key& key, std::span<const std::uint8_t> bytes,
                std::span<const std::uint8_t> tag);

// Incremental form of mac() for data that is not contiguous (e.g. a stream sequence number
// followed by a frame): Mac m(key); m.update(a); m.update(b); m.final().
class Mac {
 public:
  explicit Mac(const Key& key);
  void update(std::span<const std::uint8_t> bytes);
  MacTag final();

 private:
  alignas(64) std::array<std::uint8_t, 384> state_;  // >= sizeof(crypto_generichash_state)
};

}  // namespace osmo::wire
