// SPDX-License-Identifier: GPL-2.0-or-later
// Sealed channel frames: the record layer of an encrypted peer stream (docs/protocol.md, "Peer
// streams", version 2). After the handshake has agreed on one key per direction (ephemeral
// X25519, so a key recorded later opens nothing that was sent before), every byte a service
// writes travels inside frames
//
//   u32 LE ciphertext length n | u8 type | 3 zero bytes | ciphertext (n bytes) | 16-byte tag
//
// sealed with AES-256-GCM (where both ends have AES-NI; OpenSSL's, 6.1 GB/s here against
// libsodium's 0.9 GB/s, measured side by side) or ChaCha20-Poly1305 (libsodium), nonce = the
// frame's sequence number in its direction (u64 LE, then 4 zero bytes, never sent), additional
// data = the 8 header bytes. A changed byte anywhere, a frame dropped, repeated or moved, or a
// frame of the other direction reflected back fails its tag; a stream that stops without a kEnd
// frame was cut. The functions here work on memory only: the pump (src/daemon/peer_pump) moves
// the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/result.hpp"
#include "wire/mac.hpp"
#include "wire/sealed_stream.hpp"

namespace osmo::wire {

enum class ChannelFrame : std::uint8_t {
  kData = 0,  // bytes of the stream
  kEnd = 1,   // the writer shut its side (empty): nothing follows in this direction
};

inline constexpr std::size_t kChannelHeaderBytes = 8;
inline constexpr std::size_t kChannelTagBytes = 16;
// 256 KiB, as sealed_stream's chunks: one AEAD call per 256 KiB is noise next to the copy, and a
// frame stays in the CPU's cache between its sealing and its send.
inline constexpr std::uint32_t kMaxChannelPayload = 256u << 10;
inline constexpr std::size_t kMaxChannelFrameBytes =
    kChannelHeaderBytes + kMaxChannelPayload + kChannelTagBytes;

// One direction's key and counter. Not thread-safe: one writer (or reader) per direction. All
// set-up (OpenSSL's cipher lookup, which takes locks) happens in the constructor, so an object
// made before a fork() can be used in the child of a multi-threaded process.
class ChannelSealer {
 public:
  ChannelSealer(const Key& key, SealSuite suite, std::uint64_t first_seq = 0);
  ~ChannelSealer();
  ChannelSealer(const ChannelSealer&) = delete;
  ChannelSealer& operator=(const ChannelSealer&) = delete;
  // `frame` holds room for header, payload and tag; the payload (n <= kMaxChannelPayload bytes)
  // is already at frame + kChannelHeaderBytes and is encrypted where it lies. Returns the frame's
  // size on the wire.
  std::size_t seal(ChannelFrame type, std::uint8_t* frame, std::uint32_t n);
  std::uint64_t seq() const { return seq_; }

 private:
  Key key_;
  SealSuite suite_;
  std::uint64_t seq_;
  void* aes_ = nullptr;  // OpenSSL EVP_CIPHER_CTX with the key set (AES-256-GCM only)
};

class ChannelOpener {
 public:
  ChannelOpener(const Key& key, SealSuite suite, std::uint64_t first_seq = 0);
  ~ChannelOpener();
  ChannelOpener(const ChannelOpener&) = delete;
  ChannelOpener& operator=(const ChannelOpener&) = delete;
  // Checks the 8 header bytes before anything else is read (or allocated): the announced length
  // (at most kMaxChannelPayload), a known type, zero reserved bytes.
  Status check_header(const std::uint8_t* hdr, std::uint32_t* n, ChannelFrame* type) const;
  // Verifies and decrypts in place the whole frame (header, n bytes, tag) checked by
  // check_header. On success the plaintext is at frame + kChannelHeaderBytes. After a failure the
  // opener refuses everything (the stream is dead).
  Status open(std::uint8_t* frame, std::uint32_t n);
  std::uint64_t seq() const { return seq_; }

 private:
  Key key_;
  SealSuite suite_;
  std::uint64_t seq_;
  bool failed_ = false;
  void* aes_ = nullptr;
};

}  // namespace osmo::wire
