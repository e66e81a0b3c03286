// SPDX-License-Identifier: GPL-2.0-or-later
// Sealed channel frames (see sealed_channel.hpp).
#include "wire/sealed_channel.hpp"

#include <sodium.h>

#include <array>
#include <cstring>

namespace osmo::wire {
namespace {

static_assert(sizeof(crypto_aead_aes256gcm_state) <= 512);
static_assert(crypto_aead_aes256gcm_NPUBBYTES == 12 &&
              crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);
static_assert(crypto_aead_aes256gcm_ABYTES == kChannelTagBytes &&
              crypto_aead_chacha20poly1305_ietf_ABYTES == kChannelTagBytes);

// Each direction has its own key (the handshake derives two), so the sequence number alone makes
// a (key, nonce) pair unique: it starts at 0 and would need 2^64 frames to wrap.
std::array<std::uint8_t, 12> nonce_of(std::uint64_t seq) {
  std::array<std::uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[i] = static_cast<std::uint8_t>(seq >> (8 * i));
  return n;
}

void put_header(std::uint8_t* hdr, std::uint32_t len, ChannelFrame type) {
  for (int i = 0; i < 4; ++i) hdr[i] = static_cast<std::uint8_t>(len >> (8 * i));
  hdr[4] = static_cast<std::uint8_t>(type);
  hdr[5] = hdr[6] = hdr[7] = 0;
}

auto* aes(unsigned char* state) {
  return reinterpret_cast<crypto_aead_aes256gcm_state*>(state);
}

}  // namespace

ChannelSealer::ChannelSealer(const Key& key, SealSuite suite, std::uint64_t first_seq)
    : key_(key), suite_(suite), seq_(first_seq) {
  if (suite_ == SealSuite::kAes256Gcm) crypto_aead_aes256gcm_beforenm(aes(aes_state_), key_.data());
}

ChannelSealer::~ChannelSealer() {
  sodium_memzero(key_.data(), key_.size());
  sodium_memzero(aes_state_, sizeof aes_state_);
}

std::size_t ChannelSealer::seal(ChannelFrame type, std::uint8_t* frame, std::uint32_t n) {
  put_header(frame, n, type);
  const auto nonce = nonce_of(seq_++);
  std::uint8_t* p = frame + kChannelHeaderBytes;
  unsigned long long tag_len = 0;
  if (suite_ == SealSuite::kAes256Gcm)
    crypto_aead_aes256gcm_encrypt_detached_afternm(p, p + n, &tag_len, p, n, frame,
                                                   kChannelHeaderBytes, nullptr, nonce.data(),
                                                   aes(aes_state_));
  else
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        p, p + n, &tag_len, p, n, frame, kChannelHeaderBytes, nullptr, nonce.data(), key_.data());
  return kChannelHeaderBytes + n + kChannelTagBytes;
}

ChannelOpener::ChannelOpener(const Key& key, SealSuite suite, std::uint64_t first_seq)
    : key_(key), suite_(suite), seq_(first_seq) {
  if (suite_ == SealSuite::kAes256Gcm) crypto_aead_aes256gcm_beforenm(aes(aes_state_), key_.data());
}

ChannelOpener::~ChannelOpener() {
  sodium_memzero(key_.data(), key_.size());
  sodium_memzero(aes_state_, sizeof aes_state_);
}

Status ChannelOpener::check_header(const std::uint8_t* hdr, std::uint32_t* n,
                                   ChannelFrame* type) const {
  if (failed_) return make_error("sealed channel: refused after an earlier bad frame");
  std::uint32_t len = 0;
  for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(hdr[i]) << (8 * i);
  if (len > kMaxChannelPayload)
    return make_error("sealed channel: frame {} announces {} bytes (at most {})", seq_, len,
                      kMaxChannelPayload);
  if (hdr[4] > static_cast<std::uint8_t>(ChannelFrame::kEnd) || hdr[5] != 0 || hdr[6] != 0 ||
      hdr[7] != 0)
    return make_error("sealed channel: frame {} has a malformed header", seq_);
  if (hdr[4] == static_cast<std::uint8_t>(ChannelFrame::kEnd) && len != 0)
    return make_error("sealed channel: end frame {} carries {} bytes", seq_, len);
  *n = len;
  *type = static_cast<ChannelFrame>(hdr[4]);
  return ok_status();
}

Status ChannelOpener::open(std::uint8_t* frame, std::uint32_t n) {
  if (failed_) return make_error("sealed channel: refused after an earlier bad frame");
  const auto nonce = nonce_of(seq_);
  std::uint8_t* p = frame + kChannelHeaderBytes;
  int rc;
  if (suite_ == SealSuite::kAes256Gcm)
    rc = crypto_aead_aes256gcm_decrypt_detached_afternm(
        p, nullptr, p, n, p + n, frame, kChannelHeaderBytes, nonce.data(), aes(aes_state_));
  else
    rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
        p, nullptr, p, n, p + n, frame, kChannelHeaderBytes, nonce.data(), key_.data());
  if (rc != 0) {
    failed_ = true;
    return make_error(
        "sealed channel: frame {} fails its tag (altered, reordered, replayed or forged)", seq_);
  }
  ++seq_;
  return ok_status();
}

}  // namespace osmo::wire
