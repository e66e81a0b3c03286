// SPDX-License-Identifier: GPL-2.0-or-later
// Sealed datagrams (see sealed_datagram.hpp).
#include "wire/sealed_datagram.hpp"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

#include "wire/bytes.hpp"

namespace osmo::wire {
namespace {

static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == kDatagramNonceBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == kDatagramTagBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kKeyBytes);

constexpr std::size_t kModeOffset = 6;
constexpr std::size_t kReservedOffset = 7;
constexpr std::size_t kNonceOffset = 8;

void ensure_sodium() {
  // sodium_init is idempotent and thread-safe; it fails only if the system has no randomness.
  static const bool ok = sodium_init() >= 0;
  if (!ok) std::abort();
}

}  // namespace

DatagramNonce random_datagram_nonce() {
  ensure_sodium();
  DatagramNonce n;
  randombytes_buf(n.data(), n.size());
  return n;
}

const char* to_string(DatagramStatus s) {
  switch (s) {
    case DatagramStatus::kOk:
      return "ok";
    case DatagramStatus::kMalformed:
      return "malformed envelope";
    case DatagramStatus::kBadMagic:
      return "bad magic";
    case DatagramStatus::kBadVersion:
      return "unsupported version";
    case DatagramStatus::kBadMac:
      return "bad MAC";
    case DatagramStatus::kModeMismatch:
      return "encryption mode differs from ours";
  }
  return "?";
}

std::vector<std::uint8_t> seal_datagram(const Key& key, const DatagramSpec& spec,
                                        const DatagramHeader& header,
                                        std::span<const std::uint8_t> body) {
  ensure_sodium();
  const std::string_view sender =
      std::string_view(header.sender).substr(0, std::min<std::size_t>(spec.max_sender_bytes, 255));
  Writer w;
  w.u32(spec.magic);
  w.u8(spec.version);
  w.u8(header.type);
  w.u8(static_cast<std::uint8_t>(header.mode));
  w.u8(0);
  w.raw(header.nonce);
  w.u64(header.sent_ms);
  w.u8(static_cast<std::uint8_t>(sender.size()));
  w.raw({reinterpret_cast<const std::uint8_t*>(sender.data()), sender.size()});
  w.raw(body);
  std::vector<std::uint8_t> out = w.take();
  const std::size_t plain_len = out.size() - kDatagramClearHeaderBytes;
  out.resize(out.size() + kDatagramTagBytes);
  std::uint8_t* tag = out.data() + out.size() - kDatagramTagBytes;
  if (header.mode == DatagramMode::kSealed) {
    std::uint8_t* plain = out.data() + kDatagramClearHeaderBytes;
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(plain, tag, nullptr, plain, plain_len,
                                                        out.data(), kDatagramClearHeaderBytes,
                                                        nullptr, header.nonce.data(), key.data());
  } else {
    std::uint8_t none = 0;  // libsodium wants non-null pointers even for an empty message
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(&none, tag, nullptr, &none, 0, out.data(),
                                                        kDatagramClearHeaderBytes + plain_len,
                                                        nullptr, header.nonce.data(), key.data());
  }
  return out;
}

DatagramStatus open_datagram(const Key& key, const DatagramSpec& spec, DatagramMode expected,
                             std::span<const std::uint8_t> datagram, OpenedDatagram* out) {
  ensure_sodium();
  // Magic and version first, from as few bytes as they need: a datagram of an older version (a
  // different, possibly shorter layout) is told apart from garbage.
  if (datagram.size() < 5) return DatagramStatus::kMalformed;
  Reader r(datagram);
  if (r.u32() != spec.magic) return DatagramStatus::kBadMagic;
  if (r.u8() != spec.version) return DatagramStatus::kBadVersion;
  if (datagram.size() < datagram_overhead(1) || datagram.size() > spec.max_datagram_bytes)
    return DatagramStatus::kMalformed;
  const std::uint8_t mode_byte = datagram[kModeOffset];
  if (mode_byte != static_cast<std::uint8_t>(DatagramMode::kSealed) &&
      mode_byte != static_cast<std::uint8_t>(DatagramMode::kClear))
    return DatagramStatus::kMalformed;
  if (datagram[kReservedOffset] != 0) return DatagramStatus::kMalformed;
  const auto mode = static_cast<DatagramMode>(mode_byte);
  const std::uint8_t* nonce = datagram.data() + kNonceOffset;
  const std::size_t sealed_len = datagram.size() - kDatagramClearHeaderBytes - kDatagramTagBytes;
  const std::uint8_t* tag = datagram.data() + datagram.size() - kDatagramTagBytes;
  std::vector<std::uint8_t> plain(sealed_len);
  int rc = 0;
  if (mode == DatagramMode::kSealed) {
    rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
        plain.data(), nullptr, datagram.data() + kDatagramClearHeaderBytes, sealed_len, tag,
        datagram.data(), kDatagramClearHeaderBytes, nonce, key.data());
  } else {
    std::uint8_t none = 0;  // libsodium wants non-null pointers even for an empty message
    rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
        &none, nullptr, &none, 0, tag, datagram.data(), datagram.size() - kDatagramTagBytes, nonce,
        key.data());
    if (rc == 0 && sealed_len > 0)
      std::memcpy(plain.data(), datagram.data() + kDatagramClearHeaderBytes, sealed_len);
  }
  if (rc != 0) return DatagramStatus::kBadMac;
  if (mode != expected) return DatagramStatus::kModeMismatch;
  // Authentic from here on: a bad length is a writer's bug, still refused.
  Reader p(plain);
  const std::uint64_t sent_ms = p.u64();
  const std::uint8_t name_len = p.u8();
  if (!p.ok() || name_len == 0 || name_len > spec.max_sender_bytes || p.remaining() < name_len)
    return DatagramStatus::kMalformed;
  auto name = p.raw(name_len);
  out->header.type = datagram[5];
  out->header.mode = mode;
  out->header.sent_ms = sent_ms;
  out->header.sender.assign(reinterpret_cast<const char*>(name.data()), name.size());
  std::memcpy(out->header.nonce.data(), nonce, kDatagramNonceBytes);
  out->body.assign(plain.begin() + static_cast<std::ptrdiff_t>(9 + name_len), plain.end());
  return DatagramStatus::kOk;
}

}  // namespace osmo::wire
