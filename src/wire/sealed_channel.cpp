// SPDX-License-Identifier: GPL-2.0-or-later
// Sealed channel frames (see sealed_channel.hpp).
#include "wire/sealed_channel.hpp"

#include <openssl/evp.h>
#include <sodium.h>

#include <array>
#include <cstdlib>
#include <cstring>

namespace osmo::wire {
namespace {

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

// An AES-256-GCM context with its key; each frame only sets the nonce.
void* new_aes(const Key& key, bool encrypt) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) std::abort();  // out of memory at stream set-up
  const int ok = encrypt ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nullptr)
                         : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nullptr);
  if (ok != 1) std::abort();  // AES-256-GCM is part of every OpenSSL
  return ctx;
}

EVP_CIPHER_CTX* ctx_of(void* p) { return static_cast<EVP_CIPHER_CTX*>(p); }

}  // namespace

ChannelSealer::ChannelSealer(const Key& key, SealSuite suite, std::uint64_t first_seq)
    : key_(key), suite_(suite), seq_(first_seq) {
  if (suite_ == SealSuite::kAes256Gcm) aes_ = new_aes(key_, true);
}

ChannelSealer::~ChannelSealer() {
  sodium_memzero(key_.data(), key_.size());
  EVP_CIPHER_CTX_free(ctx_of(aes_));  // clears the key schedule
}

std::size_t ChannelSealer::seal(ChannelFrame type, std::uint8_t* frame, std::uint32_t n) {
  put_header(frame, n, type);
  const auto nonce = nonce_of(seq_++);
  std::uint8_t* p = frame + kChannelHeaderBytes;
  unsigned long long tag_len = 0;
  if (suite_ == SealSuite::kAes256Gcm) {
    EVP_CIPHER_CTX* ctx = ctx_of(aes_);
    int len = 0;
    // GCM works in place and has no padding: Final writes nothing. None of these can fail on a
    // context set up in the constructor.
    if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
        EVP_EncryptUpdate(ctx, nullptr, &len, frame, kChannelHeaderBytes) != 1 ||
        (n > 0 && EVP_EncryptUpdate(ctx, p, &len, p, static_cast<int>(n)) != 1) ||
        EVP_EncryptFinal_ex(ctx, p + n, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kChannelTagBytes, p + n) != 1)
      std::abort();
  } else
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        p, p + n, &tag_len, p, n, frame, kChannelHeaderBytes, nullptr, nonce.data(), key_.data());
  return kChannelHeaderBytes + n + kChannelTagBytes;
}

ChannelOpener::ChannelOpener(const Key& key, SealSuite suite, std::uint64_t first_seq)
    : key_(key), suite_(suite), seq_(first_seq) {
  if (suite_ == SealSuite::kAes256Gcm) aes_ = new_aes(key_, false);
}

ChannelOpener::~ChannelOpener() {
  sodium_memzero(key_.data(), key_.size());
  EVP_CIPHER_CTX_free(ctx_of(aes_));
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
  if (suite_ == SealSuite::kAes256Gcm) {
    // Decrypted in place before the tag is known: on failure the buffer holds garbage that no
    // one reads (the caller forwards nothing of a frame that failed).
    EVP_CIPHER_CTX* ctx = ctx_of(aes_);
    int len = 0;
    std::uint8_t tag[kChannelTagBytes];
    std::memcpy(tag, p + n, sizeof tag);
    rc = EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) == 1 &&
                 EVP_DecryptUpdate(ctx, nullptr, &len, frame, kChannelHeaderBytes) == 1 &&
                 (n == 0 || EVP_DecryptUpdate(ctx, p, &len, p, static_cast<int>(n)) == 1) &&
                 EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kChannelTagBytes, tag) == 1 &&
                 EVP_DecryptFinal_ex(ctx, p + n, &len) == 1
             ? 0
             : -1;
  } else
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
