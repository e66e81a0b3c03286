// SPDX-License-Identifier: GPL-2.0-or-later
// The osmo checkpoint image: a versioned, checksummed stream of typed sections, written and read
// strictly sequentially so it can go through a file, a pipe or a socket (see docs/image-format.md).
//
//   header (32 bytes): magic "OSMOCKPT", version, header size, flags, header checksum
//   section*        : 40-byte section header (type, flags, stored length, raw length,
//                     payload checksum, header checksum) followed by the payload
//   (checksums are XXH3-64, checksum.hpp)
//   END section     : section count and byte totals; a stream without it is truncated
//
// Section type numbers are part of the format: append only, never renumber. This file also holds
// the little-endian Encoder/Decoder used for section payloads; every Decoder read is bounds
// checked so a corrupted payload yields a precise error, never a crash.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace osmo::ckpt {

inline constexpr char kImageMagic[8] = {'O', 'S', 'M', 'O', 'C', 'K', 'P', 'T'};
inline constexpr std::uint32_t kImageVersion = 5;  // 2: XXH3-64, 40-byte section headers; 3: sid/pgid, capabilities;
                                                   // 4: process trees (tree, process markers, shared fds);
                                                   // 5: the terminal section (controlling pty)
inline constexpr std::size_t kImageHeaderSize = 32;
inline constexpr std::size_t kSectionHeaderSize = 40;
// A single section never exceeds this (page chunks are far smaller); a larger length in a header
// means corruption, and the limit keeps a bad header from making us allocate gigabytes.
inline constexpr std::uint64_t kMaxSectionBytes = 256ull << 20;

// Append-only: these numbers are the format.
enum class SectionType : std::uint32_t {
  kTask = 1,      // pid, comm, exe, credentials, cwd, umask, rlimits, personality, clocks
  kMm = 2,        // mm fields: code/data/brk/stack/arg/env bounds, auxv
  kVmas = 3,      // the mappings and the page runs to populate
  kRegs = 4,      // general registers, xstate (FPU/SSE/AVX/AVX-512), CPU feature mask
  kSignals = 5,   // dispositions, blocked mask, pending signals, sigaltstack
  kFds = 6,       // file descriptors
  kTimers = 7,    // interval timers
  kThreadMisc = 8,  // rseq, robust futex list, clear-tid address
  kTree = 9,      // a tree image: its processes (pid, parent, session, group, zombie status)
  kProcess = 10,  // a tree image: the metadata (and blobs) of the next live process follow
  kProcessPages = 11,  // a tree image: the pages of the next live process follow
  kTerminal = 12,  // the controlling pseudo-terminal of a session leader (v5)
  kBlob = 16,     // a chunk of a carried file's content (memfd, deleted file, shared anon)
  kPages = 17,    // a run of page contents
  kEnd = 255,
};

const char* section_name(SectionType t);

enum SectionFlags : std::uint32_t {
  kSectionLz4 = 1u << 0,  // payload is an LZ4 block; raw_length is the decoded size
};

// ---- payload encoding ----
class Encoder {
 public:
  void u8(std::uint8_t v) { buf_.push_back(v); }
  void u32(std::uint32_t v) { raw(&v, sizeof v); }
  void u64(std::uint64_t v) { raw(&v, sizeof v); }
  void i64(std::int64_t v) { raw(&v, sizeof v); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void bytes(const std::vector<std::uint8_t>& b) {
    u32(static_cast<std::uint32_t>(b.size()));
    raw(b.data(), b.size());
  }
  void raw(const void* p, std::size_t n) {
    auto* b = static_cast<const std::uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  std::vector<std::uint8_t>& buffer() { return buf_; }

 private:
  std::vector<std::uint8_t> buf_;
};

class Decoder {
 public:
  Decoder(const std::uint8_t* p, std::size_t n, std::string what) : p_(p), n_(n), what_(std::move(what)) {}
  Result<std::uint8_t> u8();
  Result<std::uint32_t> u32();
  Result<std::uint64_t> u64();
  Result<std::int64_t> i64();
  Result<std::string> str();
  Result<std::vector<std::uint8_t>> bytes();
  Status raw(void* out, std::size_t n);
  // A count of items each at least `min_item_bytes` long; refuses counts the payload cannot hold.
  Result<std::uint32_t> count(std::size_t min_item_bytes);
  Status finish() const;  // refuses trailing bytes
  std::size_t remaining() const { return n_ - off_; }

 private:
  Status need(std::size_t n) const;
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t off_ = 0;
  std::string what_;
};

// ---- byte sinks and sources ----
// Where an image's bytes go and come from. The default is an fd (a file, a pipe or a blocking
// stream socket: FdSink/FdSource, what ImageWriter(fd)/ImageReader(fd) make). A migration gives
// its own (src/migrate/sealed_image.hpp) that seals and opens chunks straight between the
// engine's buffers and the socket, with no pipe and no copying thread in between.
class ImageSink {
 public:
  virtual ~ImageSink() = default;
  // Writes all of iov[0..n), in order, or fails (never a short write). The memory is the
  // caller's and stays untouched; it may be reused as soon as this returns.
  virtual Status write(const iovec* iov, std::size_t n) = 0;
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // Reads exactly n bytes into p; fewer only at the end of the stream (the count read). An
  // error (damaged data, a cut link) must come at once: the restore never waits on a dead
  // source. On error, whatever was written into p is garbage and never used.
  virtual Result<std::size_t> read(void* p, std::size_t n) = 0;
};

// The fd sink: short writes resumed, a socket written with MSG_NOSIGNAL.
class FdSink final : public ImageSink {
 public:
  explicit FdSink(int fd);
  Status write(const iovec* iov, std::size_t n) override;

 private:
  int fd_;
  bool socket_ = false;
};

// ---- streams ----
struct SectionHeader {
  SectionType type{};
  std::uint32_t flags = 0;
  std::uint64_t length = 0;      // stored payload bytes
  std::uint64_t raw_length = 0;  // decoded payload bytes (== length unless compressed)
  std::uint64_t payload_checksum = 0;
};

struct ImageTotals {
  std::uint64_t sections = 0;
  std::uint64_t stored_bytes = 0;  // including headers
  std::uint64_t raw_payload_bytes = 0;
};

class ImageWriter {
 public:
  // A pipe is grown to 1 MiB (the default 64 KiB would wake the reader 64 times per page
  // section). Short writes (pipes, stream sockets) are resumed.
  explicit ImageWriter(int fd, bool compress = false);
  // Writes into `sink` (not owned; must outlive the writer).
  ImageWriter(ImageSink& sink, bool compress);
  // The fd writer, or the sink when one is given (CheckpointOptions::sink).
  static ImageWriter make(int fd, ImageSink* sink, bool compress) {
    return sink != nullptr ? ImageWriter(*sink, compress) : ImageWriter(fd, compress);
  }
  Status write_header();
  // Writes one section; `parts` are concatenated to form the payload (so page data is written
  // straight from the read buffer, without a copy).
  Status write_section(SectionType type, const std::vector<std::pair<const void*, std::size_t>>& parts,
                       bool compressible = false);
  Status write_section(SectionType type, const std::vector<std::uint8_t>& payload) {
    return write_section(type, {{payload.data(), payload.size()}});
  }
  // Same, uncompressed, with the payload checksum computed by the caller (page sections are
  // checksummed by the threads that read them).
  Status write_section_checksummed(SectionType type, const std::vector<std::pair<const void*, std::size_t>>& parts,
                                   std::uint64_t payload_checksum);
  // A section the caller compressed (compress_payload) and checksummed (over the stored bytes).
  Status write_compressed_section(SectionType type, const void* stored, std::size_t stored_len,
                                  std::uint64_t raw_len, std::uint64_t stored_checksum);
  Status write_end();
  bool compressing() const { return compress_; }
  const ImageTotals& totals() const { return totals_; }

 private:
  Status write_all(const void* p, std::size_t n);
  Status writev_all(std::vector<iovec>& iov);
  std::unique_ptr<FdSink> own_;  // the fd writer's sink
  ImageSink* sink_;
  bool compress_;
  std::uint64_t offset_ = 0;
  ImageTotals totals_;
  std::vector<char> scratch_;
};

// A payload taken by ImageReader::take_payload_unchecked.
struct UncheckedPayload {
  const std::uint8_t* stored = nullptr;  // the bytes as stored in the image
  std::size_t stored_length = 0;
  const std::uint8_t* data = nullptr;    // the payload: stored, or decode_to once check() decoded it
  std::size_t length = 0;              // decoded length (== stored_length unless compressed)
  std::uint8_t* decode_to = nullptr;   // where a compressed payload is decoded (length bytes)
  bool compressed = false;
  bool in_mapping = false;  // the stored bytes lie in the reader's mapping of the image file
  bool checked = false;
  std::uint64_t checksum = 0;
  std::uint64_t index = 0;   // section number and the offset of its header, for messages
  std::uint64_t offset = 0;
  SectionType type{};
  // Makes the stored bytes present (a mapped image: one bulk populate, not a fault per page),
  // verifies their checksum and decodes a compressed payload into decode_to; data then points
  // at the payload. Safe on any thread while the reader lives and has not released the bytes.
  Status check();
};

// LZ4 of a payload given in parts, kept only when it saves space: true with the stored bytes in
// *out (flat is scratch for the concatenated parts), false to store it plain. A payload of 256 KiB
// or more whose samples do not compress by 5% is not tried. Thread-safe: a dump compresses page
// sections on its reader threads.
bool compress_payload(const std::vector<std::pair<const void*, std::size_t>>& parts, std::uint64_t raw_len,
                      std::vector<char>* flat, std::vector<char>* out);

class ImageReader {
 public:
  // An image in a regular file (or memfd) is mapped, so page sections can be used in place
  // (take_payload_unchecked); any other fd is read as a stream. Either way nothing past what
  // the caller asked for is consumed: a stream is read with exact-length reads (no buffering
  // ahead), and a mapped file's offset is left just after the last byte used, so whoever reads
  // the fd next finds what follows the image.
  explicit ImageReader(int fd);
  // Reads a stream from `source` (not owned; must outlive the reader): never mapped.
  explicit ImageReader(ImageSource& source);
  ~ImageReader();
  ImageReader(const ImageReader&) = delete;
  ImageReader& operator=(const ImageReader&) = delete;
  Result<std::uint32_t> read_header();  // returns the version
  // Reads the next section header; the payload must then be consumed with read_payload.
  Result<SectionHeader> next();
  // Reads and verifies the current payload into `out` (resized to raw_length).
  Status read_payload(std::vector<std::uint8_t>* out);
  // Same, into caller memory of exactly raw_length bytes.
  Status read_payload_into(void* out, std::size_t n);
  // Takes the current payload without checking or decoding it yet, so that the threads consuming
  // page sections do that side by side (UncheckedPayload::check, before any use). Of a mapped
  // image the stored bytes are used in place (valid while the reader lives, not yet made
  // present); of a stream they are read into buf (at least the stored length). A compressed payload
  // will be decoded into decode_buf (at least raw_length bytes; unused otherwise).
  Result<UncheckedPayload> take_payload_unchecked(std::uint8_t* buf, std::size_t buf_len, std::uint8_t* decode_buf,
                                                  std::size_t decode_buf_len);
  bool mapped() const { return map_ != nullptr; }
  // Unmaps the whole pages of the mapping before p, which the caller no longer uses (views into
  // them become invalid). Unmapping a populated GiB costs ~30 ms: a restore does it piece by
  // piece beside its critical path instead of all at the end.
  void release_before(const std::uint8_t* p);
  // After END: totals recorded by the writer match what was read.
  std::uint64_t section_index() const { return index_; }
  std::uint64_t offset() const { return offset_; }
  const ImageTotals& totals() const { return totals_; }
  bool at_end() const { return ended_; }

 private:
  Result<std::size_t> read_full(void* p, std::size_t n);
  // Makes [map_pos_, map_pos_ + n) of the mapping present; fails if the file shrank under us
  // (touching a page past its end would be a SIGBUS).
  Status populate_mapped(std::size_t n);
  void close_section(std::size_t raw_n);  // the current section is consumed: counts it
  Status check_end(const std::vector<std::uint8_t>& payload);
  int fd_;
  ImageSource* source_ = nullptr;      // when reading from a source instead of fd_
  const std::uint8_t* map_ = nullptr;  // the whole file, when it is one
  std::size_t map_len_ = 0;
  std::size_t map_pos_ = 0;            // next byte to read
  std::size_t map_released_ = 0;       // [0, map_released_) is unmapped already
  std::uint64_t offset_ = 0;
  std::uint64_t index_ = 0;
  std::uint64_t section_offset_ = 0;
  SectionHeader cur_{};
  bool have_cur_ = false;
  bool ended_ = false;
  ImageTotals totals_;
  std::vector<char> scratch_;
};

}  // namespace osmo::ckpt
