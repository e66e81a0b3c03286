// SPDX-License-Identifier: GPL-2.0-or-later
// Sealed streams (see sealed_stream.hpp).
#include "wire/sealed_stream.hpp"

#include <sodium.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/fd_io.hpp"

namespace osmo::wire {
namespace {

// The nonce: direction (u32 LE, the chunk type in its top byte) then the chunk's sequence number
// (u64 LE). 12 bytes, what both IETF AEADs take. A (key, nonce) pair is never reused: the key is
// per session, the sequence number per direction never wraps (2^64 chunks), and one sequence
// number seals one chunk of one type.
std::array<std::uint8_t, 12> nonce_of(Direction dir, ChunkType type, std::uint64_t seq) {
  std::array<std::uint8_t, 12> n{};
  const auto d = static_cast<std::uint32_t>(dir) | (static_cast<std::uint32_t>(type) << 24);
  for (int i = 0; i < 4; ++i) n[i] = static_cast<std::uint8_t>(d >> (8 * i));
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(seq >> (8 * i));
  return n;
}

// Tag over `ad` with an empty message: authentication only, for now (encryption comes with the
// security issue by putting the payload in the message instead of the additional data).
void compute_tag(SealSuite suite, const Key& key, const std::array<std::uint8_t, 12>& nonce,
                 const std::uint8_t* ad, std::size_t ad_len, std::uint8_t* tag) {
  unsigned long long len = 0;
  if (suite == SealSuite::kAes256Gcm)
    crypto_aead_aes256gcm_encrypt(tag, &len, nullptr, 0, ad, ad_len, nullptr, nonce.data(), key.data());
  else
    crypto_aead_chacha20poly1305_ietf_encrypt(tag, &len, nullptr, 0, ad, ad_len, nullptr, nonce.data(), key.data());
}

void put_header(std::uint8_t* hdr, std::uint32_t len, ChunkType type) {
  for (int i = 0; i < 4; ++i) hdr[i] = static_cast<std::uint8_t>(len >> (8 * i));
  hdr[4] = static_cast<std::uint8_t>(type);
  hdr[5] = hdr[6] = hdr[7] = 0;
}

// Reads exactly n bytes; returns how many were read before EOF (n when complete).
Result<std::size_t> read_exact(int fd, void* p, std::size_t n) {
  const IoResult r = read_full(fd, p, n);
  if (!r.ok()) return Error{r.error, "cannot read a sealed chunk"};
  return r.bytes;
}

WriteMode mode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? WriteMode::kSocket : WriteMode::kFile;
}

}  // namespace

SealSuite local_seal_suite() {
  if (sodium_init() < 0) return SealSuite::kChaCha20Poly1305;
  return crypto_aead_aes256gcm_is_available() ? SealSuite::kAes256Gcm : SealSuite::kChaCha20Poly1305;
}

const char* seal_suite_name(SealSuite s) {
  return s == SealSuite::kAes256Gcm ? "aes256gcm" : "chacha20poly1305";
}

SessionId random_session_id() {
  SessionId id;
  if (sodium_init() < 0) std::abort();  // libsodium cannot work at all: no safe randomness
  randombytes_buf(id.data(), id.size());
  return id;
}

Key derive_session_key(const Key& cluster_key, std::string_view purpose, SealSuite suite,
                       const SessionId& session) {
  Mac m(cluster_key);
  // v2: the header is bound through the nonce, not the additional data (see the .hpp). A v1
  // peer derives another key, so mixing the two fails the first tag instead of misreading.
  m.update({reinterpret_cast<const std::uint8_t*>("osmo-sealed-v2"), 14});
  const auto plen = static_cast<std::uint8_t>(purpose.size());
  m.update({&plen, 1});
  m.update({reinterpret_cast<const std::uint8_t*>(purpose.data()), purpose.size()});
  const auto s = static_cast<std::uint8_t>(suite);
  m.update({&s, 1});
  m.update(session);
  MacTag t = m.final();
  Key k;
  std::memcpy(k.data(), t.data(), k.size());
  return k;
}

ChunkSealer::ChunkSealer(const Key& session_key, SealSuite suite, Direction dir)
    : key_(session_key), suite_(suite), dir_(dir) {}

Status ChunkSealer::write(int fd, ChunkType type, std::span<const std::uint8_t> payload) {
  if (payload.size() > kMaxChunkPayload)
    return make_error("sealed chunk of {} bytes exceeds {}", payload.size(), kMaxChunkPayload);
  if (type == ChunkType::kData && !payload.empty()) {
    iovec v{const_cast<std::uint8_t*>(payload.data()), payload.size()};
    return write_data(fd, &v, 1);
  }
  std::uint8_t hdr[kChunkHeaderBytes];
  put_header(hdr, static_cast<std::uint32_t>(payload.size()), type);
  std::uint8_t tag[kChunkTagBytes];
  compute_tag(suite_, key_, nonce_of(dir_, type, seq_), payload.data(), payload.size(), tag);
  iovec iov[3] = {{hdr, sizeof hdr}, {const_cast<std::uint8_t*>(payload.data()), payload.size()}, {tag, sizeof tag}};
  if (const IoResult w = writev_full(fd, iov, 3, mode_of(fd)); !w.ok()) return Error{w.error, "cannot write a sealed chunk"};
  ++seq_;
  return ok_status();
}

Status ChunkSealer::write_message(int fd, std::string_view text) {
  return write(fd, ChunkType::kMessage, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

Status ChunkSealer::write_data(int fd, const iovec* iov, std::size_t n) {
  // Chunks go out in batches: one sendmsg carries up to kBatchChunks chunks (3 iovecs each) or
  // about kBatchBytes, so a run of small pieces (a fragmented page section) does not cost a
  // system call per piece, while a large one is sent right after its tag is computed, still in
  // the cache.
  constexpr std::size_t kBatchChunks = 256;
  constexpr std::size_t kBatchBytes = kMaxChunkPayload;
  constexpr std::size_t kPer = kChunkHeaderBytes + kChunkTagBytes;
  const WriteMode mode = mode_of(fd);
  hdrs_.resize(kBatchChunks * kPer);
  std::vector<iovec> out;
  out.reserve(kBatchChunks * 3);
  std::size_t chunks = 0, bytes = 0;
  auto flush = [&]() -> Status {
    if (out.empty()) return ok_status();
    const IoResult w = writev_full(fd, out.data(), out.size(), mode);
    if (!w.ok()) return Error{w.error, "cannot write a sealed chunk"};
    seq_ += chunks;
    out.clear();
    chunks = bytes = 0;
    return ok_status();
  };
  for (std::size_t i = 0; i < n; ++i) {
    const auto* p = static_cast<const std::uint8_t*>(iov[i].iov_base);
    std::size_t left = iov[i].iov_len;
    while (left > 0) {
      const auto len = static_cast<std::uint32_t>(std::min<std::size_t>(left, kMaxChunkPayload));
      std::uint8_t* hdr = hdrs_.data() + chunks * kPer;
      std::uint8_t* tag = hdr + kChunkHeaderBytes;
      put_header(hdr, len, ChunkType::kData);
      compute_tag(suite_, key_, nonce_of(dir_, ChunkType::kData, seq_ + chunks), p, len, tag);
      const std::uint8_t* body = p;
      if (data_chunks_++ == damage_at_) {
        // The fault point: a bit error on the wire, after the tag was computed.
        damaged_.assign(p, p + len);
        damaged_[len / 2] ^= 0x01;
        body = damaged_.data();
      }
      out.push_back({hdr, kChunkHeaderBytes});
      out.push_back({const_cast<std::uint8_t*>(body), len});
      out.push_back({tag, kChunkTagBytes});
      ++chunks;
      bytes += len;
      p += len;
      left -= len;
      if (chunks == kBatchChunks || bytes >= kBatchBytes) OSMO_TRY(flush());
    }
  }
  return flush();
}

ChunkOpener::ChunkOpener(const Key& session_key, SealSuite suite, Direction dir)
    : key_(session_key), suite_(suite), dir_(dir) {}

Status ChunkOpener::refuse(Error e) {
  failed_ = true;
  ++refused_;
  return e;
}

Status ChunkOpener::read_header(int fd, std::uint32_t* len, ChunkType* type) {
  if (failed_) return make_error("sealed stream already refused at chunk {}", seq_);
  std::uint8_t hdr[kChunkHeaderBytes];
  OSMO_ASSIGN_OR_RETURN(std::size_t got, read_exact(fd, hdr, kChunkHeaderBytes));
  if (got == 0) return refuse(make_error("sealed stream ended before its end chunk (after {} chunks)", seq_));
  if (got < kChunkHeaderBytes) return refuse(make_error("sealed stream truncated in the header of chunk {}", seq_));
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<std::uint32_t>(hdr[i]) << (8 * i);
  if (n > kMaxChunkPayload)
    return refuse(make_error("sealed chunk {} announces {} bytes (at most {})", seq_, n, kMaxChunkPayload));
  if (hdr[4] > static_cast<std::uint8_t>(ChunkType::kMessage) || hdr[5] != 0 || hdr[6] != 0 || hdr[7] != 0)
    return refuse(make_error("sealed chunk {} has a malformed header", seq_));
  *len = n;
  *type = static_cast<ChunkType>(hdr[4]);
  return ok_status();
}

Status ChunkOpener::read_and_verify(int fd, std::uint8_t* p, std::uint32_t len, ChunkType type) {
  std::uint8_t tag[kChunkTagBytes];
  // Payload and tag with one readv where the socket has both.
  iovec iov[2] = {{p, len}, {tag, sizeof tag}};
  std::size_t want = len + sizeof tag, got = 0;
  iovec* v = iov;
  int cnt = 2;
  while (got < want) {
    ssize_t r = ::readv(fd, v, cnt);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error{errno, "cannot read a sealed chunk"};
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
    auto k = static_cast<std::size_t>(r);
    while (cnt > 0 && k >= v->iov_len) {
      k -= v->iov_len;
      ++v;
      --cnt;
    }
    if (cnt > 0) {
      v->iov_base = static_cast<std::uint8_t*>(v->iov_base) + k;
      v->iov_len -= k;
    }
  }
  if (got < len) return refuse(make_error("sealed stream truncated in chunk {}", seq_));
  if (got < want) return refuse(make_error("sealed stream truncated in the tag of chunk {}", seq_));
  std::uint8_t expect[kChunkTagBytes];
  compute_tag(suite_, key_, nonce_of(dir_, type, seq_), p, len, expect);
  if (sodium_memcmp(expect, tag, sizeof tag) != 0)
    return refuse(make_error("sealed chunk {} failed authentication (damaged or forged data)", seq_));
  ++seq_;
  return ok_status();
}

Status ChunkOpener::read(int fd, Chunk* out) {
  if (pending_len_ > 0) return refuse(make_error("protocol error: a chunk read while {} bytes of the last one were unread", pending_len_));
  std::uint32_t len = 0;
  ChunkType type{};
  OSMO_TRY(read_header(fd, &len, &type));
  // out->payload keeps its capacity from chunk to chunk: a fresh buffer per chunk would cost a
  // page fault per 4 KiB (~12 us each on this VM).
  out->payload.resize(len);
  OSMO_TRY(read_and_verify(fd, out->payload.data(), len, type));
  out->type = type;
  return ok_status();
}

Result<std::size_t> ChunkOpener::read_data(int fd, void* p, std::size_t n) {
  auto* dst = static_cast<std::uint8_t*>(p);
  if (data_ended_ && pending_len_ == 0) data_ended_ = false;  // a new byte stream
  std::size_t got = 0;
  while (got < n) {
    if (pending_len_ > 0) {
      const std::size_t k = std::min(pending_len_, n - got);
      std::memcpy(dst + got, buf_.data() + pending_off_, k);
      pending_off_ += k;
      pending_len_ -= k;
      got += k;
      continue;
    }
    std::uint32_t len = 0;
    ChunkType type{};
    OSMO_TRY(read_header(fd, &len, &type));
    if (type == ChunkType::kMessage)
      return refuse(make_error("sealed stream: a message chunk inside the data stream (chunk {})", seq_)).error();
    if (type == ChunkType::kEnd) {
      if (len != 0) return refuse(make_error("sealed end chunk {} carries {} bytes", seq_, len)).error();
      OSMO_TRY(read_and_verify(fd, nullptr, 0, type));
      data_ended_ = true;
      break;
    }
    if (len <= n - got) {  // straight into the caller's memory
      OSMO_TRY(read_and_verify(fd, dst + got, len, type));
      got += len;
    } else {
      buf_.resize(std::max<std::size_t>(buf_.size(), len));
      OSMO_TRY(read_and_verify(fd, buf_.data(), len, type));
      pending_off_ = 0;
      pending_len_ = len;
    }
  }
  return got;
}

Status seal_pump(int plain_fd, int sealed_fd, ChunkSealer& sealer, std::uint64_t* bytes) {
  std::vector<std::uint8_t> buf(kMaxChunkPayload);
  std::uint64_t total = 0;
  for (;;) {
    // Fill a whole chunk when the producer is fast, but never wait for more than one read's
    // worth: a short read is sent as it is, so the reader is never starved by our buffering.
    ssize_t r = ::read(plain_fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno_error("cannot read the stream to seal");
    if (r == 0) break;
    iovec v{buf.data(), static_cast<std::size_t>(r)};
    OSMO_TRY(sealer.write_data(sealed_fd, &v, 1));
    total += static_cast<std::uint64_t>(r);
  }
  OSMO_TRY(sealer.write(sealed_fd, ChunkType::kEnd, {}));
  if (bytes != nullptr) *bytes = total;
  return ok_status();
}

Status open_pump(int sealed_fd, int plain_fd, ChunkOpener& opener, std::uint64_t* bytes) {
  Chunk c;
  std::uint64_t total = 0;
  for (;;) {
    OSMO_TRY(opener.read(sealed_fd, &c));
    if (c.type == ChunkType::kEnd) break;
    if (c.type != ChunkType::kData)
      return make_error("sealed stream: a message chunk inside the data stream (chunk {})", opener.chunks() - 1);
    if (const IoResult w = write_full(plain_fd, c.payload.data(), c.payload.size()); !w.ok())
      return Error{w.error, "cannot write the opened stream"};
    total += c.payload.size();
  }
  if (bytes != nullptr) *bytes = total;
  return ok_status();
}

}  // namespace osmo::wire
