// SPDX-License-Identifier: GPL-2.0-or-later
// Sealed datagrams: the envelope of every gossip datagram (docs/protocol.md, "Datagram
// envelope"). Each datagram is AEAD-protected (libsodium XChaCha20-Poly1305 IETF) with a random
// 24-byte nonce and bound to its sender and send time, so that a receiver can refuse a forged,
// altered, replayed or delayed datagram. The body is encrypted unless the cluster runs with
// encryption off (authentication and replay protection stay).
//
//   offset  size  field                 in clear   authenticated
//   0       4     magic (u32 LE)        yes        yes
//   4       1     version               yes        yes
//   5       1     type                  yes        yes
//   6       1     mode (1 sealed, 2 clear) yes     yes
//   7       1     reserved (0)          yes        yes
//   8       24    nonce                 yes        yes
//   32      8     sent_ms (u64 LE)      mode 2     yes
//   40      1     sender length n       mode 2     yes
//   41      n     sender name           mode 2     yes
//   41+n    m     body                  mode 2     yes
//   41+n+m  16    Poly1305 tag
//
// In mode 1 bytes [32, 41+n+m) are the ciphertext and bytes [0, 32) the additional data; in
// mode 2 the whole datagram before the tag is additional data and the message is empty. The
// magic and the version are read before anything is verified so that another protocol or a
// node of another version is recognised and counted, never misread.
//
// This file only seals and opens; whether sent_ms is recent and the nonce new is the receiver's
// decision (gossip/replay_guard.hpp), because only it knows its clock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "wire/mac.hpp"

namespace osmo::wire {

inline constexpr std::size_t kDatagramNonceBytes = 24;
inline constexpr std::size_t kDatagramTagBytes = 16;
inline constexpr std::size_t kDatagramClearHeaderBytes = 32;  // magic .. nonce
// Bytes around the body for a sender name of n bytes.
constexpr std::size_t datagram_overhead(std::size_t sender_bytes) {
  return kDatagramClearHeaderBytes + 8 + 1 + sender_bytes + kDatagramTagBytes;
}

using DatagramNonce = std::array<std::uint8_t, kDatagramNonceBytes>;

// How the body travels. Both ends must agree: a datagram in the other mode is refused.
enum class DatagramMode : std::uint8_t { kSealed = 1, kClear = 2 };

struct DatagramSpec {
  std::uint32_t magic = 0;
  std::uint8_t version = 0;  // the one version this reader speaks
  std::size_t max_sender_bytes = 0;
  std::size_t max_datagram_bytes = 0;
};

struct DatagramHeader {
  std::uint8_t type = 0;
  DatagramMode mode = DatagramMode::kSealed;
  std::uint64_t sent_ms = 0;  // the sender's wall clock, ms since the epoch
  std::string sender;
  DatagramNonce nonce{};
};

// A fresh nonce from libsodium's CSPRNG (never from a seeded protocol random: nonces must not
// repeat across nodes and restarts; they change no protocol decision, so seeded runs still
// behave the same).
DatagramNonce random_datagram_nonce();

std::vector<std::uint8_t> seal_datagram(const Key& key, const DatagramSpec& spec,
                                        const DatagramHeader& header,
                                        std::span<const std::uint8_t> body);

enum class DatagramStatus : std::uint8_t {
  kOk = 0,
  kMalformed,     // too short, too long, bad sender length, nonzero reserved byte, unknown mode
  kBadMagic,      // not this protocol
  kBadVersion,    // this protocol, another version
  kBadMac,        // wrong key, or altered in transit
  kModeMismatch,  // authentic, but sealed when we run clear or the other way round
};
const char* to_string(DatagramStatus s);

struct OpenedDatagram {
  DatagramHeader header;
  std::vector<std::uint8_t> body;  // plaintext
};

// Checks size, magic, version, mode and tag, in that order, and decrypts. A datagram in the other
// mode is authenticated before it is reported as kModeMismatch (an outsider cannot make us count
// mismatches), and never interpreted.
DatagramStatus open_datagram(const Key& key, const DatagramSpec& spec, DatagramMode expected,
                             std::span<const std::uint8_t> datagram, OpenedDatagram* out);

}  // namespace osmo::wire
