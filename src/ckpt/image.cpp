// SPDX-License-Identifier: GPL-2.0-or-later
// Image stream codec: section framing, checksums (XXH3-64, checksum.hpp), optional LZ4,
// and the bounds-checked payload decoder. Errors name the section index, type and stream offset.
#include "ckpt/image.hpp"

#include <fcntl.h>
#include <lz4.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/fd_io.hpp"
#include "ckpt/checksum.hpp"

namespace osmo::ckpt {

const char* section_name(SectionType t) {
  switch (t) {
    case SectionType::kTask: return "task";
    case SectionType::kMm: return "mm";
    case SectionType::kVmas: return "vmas";
    case SectionType::kRegs: return "regs";
    case SectionType::kSignals: return "signals";
    case SectionType::kFds: return "fds";
    case SectionType::kTimers: return "timers";
    case SectionType::kThreadMisc: return "thread-misc";
    case SectionType::kTree: return "tree";
    case SectionType::kProcess: return "process";
    case SectionType::kProcessPages: return "process-pages";
    case SectionType::kTerminal: return "terminal";
    case SectionType::kBlob: return "blob";
    case SectionType::kPages: return "pages";
    case SectionType::kEnd: return "end";
  }
  return "unknown";
}

// ---- Decoder ----
Status Decoder::need(std::size_t n) const {
  if (n_ - off_ < n)
    return make_error("image corrupted: {} payload too short (need {} bytes at offset {}, have {})",
                      what_, n, off_, n_ - off_);
  return ok_status();
}
Status Decoder::raw(void* out, std::size_t n) {
  OSMO_TRY(need(n));
  if (n > 0) std::memcpy(out, p_ + off_, n);
  off_ += n;
  return ok_status();
}
Result<std::uint8_t> Decoder::u8() {
  std::uint8_t v;
  OSMO_TRY(raw(&v, 1));
  return v;
}
Result<std::uint32_t> Decoder::u32() {
  std::uint32_t v;
  OSMO_TRY(raw(&v, 4));
  return v;
}
Result<std::uint64_t> Decoder::u64() {
  std::uint64_t v;
  OSMO_TRY(raw(&v, 8));
  return v;
}
Result<std::int64_t> Decoder::i64() {
  std::int64_t v;
  OSMO_TRY(raw(&v, 8));
  return v;
}
Result<std::string> Decoder::str() {
  OSMO_ASSIGN_OR_RETURN(std::uint32_t n, u32());
  OSMO_TRY(need(n));
  std::string s(reinterpret_cast<const char*>(p_ + off_), n);
  off_ += n;
  return s;
}
Result<std::vector<std::uint8_t>> Decoder::bytes() {
  OSMO_ASSIGN_OR_RETURN(std::uint32_t n, u32());
  OSMO_TRY(need(n));
  std::vector<std::uint8_t> b(p_ + off_, p_ + off_ + n);
  off_ += n;
  return b;
}
Result<std::uint32_t> Decoder::count(std::size_t min_item_bytes) {
  OSMO_ASSIGN_OR_RETURN(std::uint32_t n, u32());
  if (min_item_bytes > 0 && n > remaining() / min_item_bytes)
    return make_error("image corrupted: {} claims {} items but only {} bytes remain", what_, n,
                      remaining());
  return n;
}
Status Decoder::finish() const {
  if (off_ != n_)
    return make_error("image corrupted: {} payload has {} unexpected trailing bytes", what_, n_ - off_);
  return ok_status();
}

// ---- on-disk headers ----
namespace {

struct FileHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t flags;
  std::uint64_t checksum;  // of the 24 bytes before it
};
static_assert(sizeof(FileHeader) == kImageHeaderSize);
static_assert(offsetof(FileHeader, checksum) == 24);

struct RawSectionHeader {
  std::uint32_t type;
  std::uint32_t flags;
  std::uint64_t length;
  std::uint64_t raw_length;
  std::uint64_t payload_checksum;
  std::uint64_t header_checksum;  // of the 32 bytes before it
};
static_assert(sizeof(RawSectionHeader) == kSectionHeaderSize);
static_assert(offsetof(RawSectionHeader, header_checksum) == 32);

bool known_type(std::uint32_t t) {
  switch (static_cast<SectionType>(t)) {
    case SectionType::kTask: case SectionType::kMm: case SectionType::kVmas:
    case SectionType::kRegs: case SectionType::kSignals: case SectionType::kFds:
    case SectionType::kTimers: case SectionType::kThreadMisc: case SectionType::kBlob:
    case SectionType::kPages: case SectionType::kEnd: case SectionType::kTree:
    case SectionType::kProcess: case SectionType::kProcessPages: case SectionType::kTerminal:
      return true;
  }
  return false;
}

// 1 MiB is /proc/sys/fs/pipe-max-size by default, so this works unprivileged too; a failure only
// costs speed.
void grow_if_pipe(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) (void)::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}

}  // namespace

// ---- sinks ----
FdSink::FdSink(int fd) : fd_(fd) {
  grow_if_pipe(fd);
  struct stat st {};
  socket_ = ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

Status FdSink::write(const iovec* iov, std::size_t n) {
  // writev_full may advance the vector it is given as it resumes short writes: a copy.
  std::vector<iovec> v(iov, iov + n);
  const IoResult w = writev_full(fd_, v.data(), v.size(), socket_ ? WriteMode::kSocket : WriteMode::kFile);
  if (!w.ok()) return Error{w.error, ""};  // the writer names the offset
  return ok_status();
}

// ---- writer ----
ImageWriter::ImageWriter(int fd, bool compress)
    : own_(std::make_unique<FdSink>(fd)), sink_(own_.get()), compress_(compress) {}

ImageWriter::ImageWriter(ImageSink& sink, bool compress) : sink_(&sink), compress_(compress) {}

Status ImageWriter::write_all(const void* p, std::size_t n) {
  std::vector<iovec> iov{{const_cast<void*>(p), n}};
  return writev_all(iov);
}

Status ImageWriter::writev_all(std::vector<iovec>& iov) {
  std::uint64_t bytes = 0;
  for (const iovec& v : iov) bytes += v.iov_len;
  if (Status s = sink_->write(iov.data(), iov.size()); !s.ok())
    return Error{s.error().code, fmt::format("cannot write image at offset {}{}{}", offset_,
                                             s.error().message.empty() ? "" : ": ", s.error().message)};
  offset_ += bytes;
  return ok_status();
}

Status ImageWriter::write_header() {
  FileHeader h{};
  std::memcpy(h.magic, kImageMagic, 8);
  h.version = kImageVersion;
  h.header_size = kImageHeaderSize;
  h.checksum = checksum64(&h, offsetof(FileHeader, checksum));
  return write_all(&h, sizeof h);
}

namespace {

Result<std::uint64_t> payload_length(SectionType type, const std::vector<std::pair<const void*, std::size_t>>& parts) {
  std::uint64_t len = 0;
  for (auto& [p, n] : parts) len += n;
  if (len > kMaxSectionBytes)
    return make_error("internal: {} section of {} bytes exceeds the {}-byte limit", section_name(type), len,
                      kMaxSectionBytes);
  return len;
}

}  // namespace

Status ImageWriter::write_section(SectionType type,
                                  const std::vector<std::pair<const void*, std::size_t>>& parts,
                                  bool compressible) {
  OSMO_ASSIGN_OR_RETURN(std::uint64_t raw_len, payload_length(type, parts));
  if (compress_ && compressible && raw_len > 0) {
    std::vector<char> flat;
    if (compress_payload(parts, raw_len, &flat, &scratch_))
      return write_compressed_section(type, scratch_.data(), scratch_.size(), raw_len,
                                      checksum64(scratch_.data(), scratch_.size()));
  }
  Checksum sum;
  for (auto& [p, n] : parts) sum.update(p, n);
  return write_section_checksummed(type, parts, sum.digest());
}

bool compress_payload(const std::vector<std::pair<const void*, std::size_t>>& parts, std::uint64_t raw_len,
                      std::vector<char>* flat, std::vector<char>* out) {
  if (raw_len == 0 || raw_len > kMaxSectionBytes) return false;
  flat->resize(raw_len);
  std::size_t off = 0;
  for (auto& [p, n] : parts) {
    std::memcpy(flat->data() + off, p, n);
    off += n;
  }
  // Memory that does not compress would cost a whole LZ4 pass (~3x a dump's copy) for nothing:
  // four 16 KiB samples spread over a large payload decide first. The choice depends on the data
  // only, so the image stays the same whichever thread compresses it.
  constexpr std::size_t kSample = 16 << 10;
  if (raw_len >= 16 * kSample) {
    out->resize(static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(kSample))));
    std::size_t sampled = 0;
    for (std::size_t k = 0; k < 4; k++) {
      std::size_t at = k * ((raw_len - kSample) / 3);
      int c = LZ4_compress_default(flat->data() + at, out->data(), static_cast<int>(kSample),
                                   static_cast<int>(out->size()));
      sampled += c > 0 ? static_cast<std::size_t>(c) : kSample;
    }
    if (sampled > 4 * kSample * 95 / 100) return false;
  }
  out->resize(static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(raw_len))));
  int c = LZ4_compress_default(flat->data(), out->data(), static_cast<int>(raw_len), static_cast<int>(out->size()));
  if (c <= 0 || static_cast<std::uint64_t>(c) >= raw_len) return false;
  out->resize(static_cast<std::size_t>(c));
  return true;
}

Status ImageWriter::write_compressed_section(SectionType type, const void* stored, std::size_t stored_len,
                                             std::uint64_t raw_len, std::uint64_t stored_checksum) {
  RawSectionHeader h{};
  h.type = static_cast<std::uint32_t>(type);
  h.flags = kSectionLz4;
  h.raw_length = raw_len;
  h.length = stored_len;
  h.payload_checksum = stored_checksum;
  h.header_checksum = checksum64(&h, offsetof(RawSectionHeader, header_checksum));
  std::vector<iovec> iov{{&h, sizeof h}, {const_cast<void*>(stored), stored_len}};
  OSMO_TRY(writev_all(iov));
  totals_.sections++;
  totals_.stored_bytes += sizeof h + stored_len;
  totals_.raw_payload_bytes += raw_len;
  return ok_status();
}

Status ImageWriter::write_section_checksummed(SectionType type,
                                              const std::vector<std::pair<const void*, std::size_t>>& parts,
                                              std::uint64_t payload_checksum) {
  OSMO_ASSIGN_OR_RETURN(std::uint64_t raw_len, payload_length(type, parts));
  RawSectionHeader h{};
  h.type = static_cast<std::uint32_t>(type);
  h.raw_length = raw_len;
  h.length = raw_len;
  h.payload_checksum = payload_checksum;
  h.header_checksum = checksum64(&h, offsetof(RawSectionHeader, header_checksum));
  // Header and parts in as few writev calls as possible (a page section has one part per run).
  std::vector<iovec> iov;
  iov.reserve(parts.size() + 1);
  iov.push_back({&h, sizeof h});
  for (auto& [p, n] : parts)
    if (n > 0) iov.push_back({const_cast<void*>(p), n});
  OSMO_TRY(writev_all(iov));
  totals_.sections++;
  totals_.stored_bytes += sizeof h + raw_len;
  totals_.raw_payload_bytes += raw_len;
  return ok_status();
}

Status ImageWriter::write_end() {
  Encoder e;
  e.u64(totals_.sections);
  e.u64(totals_.raw_payload_bytes);
  return write_section(SectionType::kEnd, e.buffer());
}

// ---- reader ----
ImageReader::ImageReader(int fd) : fd_(fd) {
  grow_if_pipe(fd);
  struct stat st {};
  off_t pos = ::lseek(fd, 0, SEEK_CUR);
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || pos < 0 || st.st_size <= pos) return;
  void* m = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return;  // e.g. a write-only fd: read it as a stream
  map_ = static_cast<const std::uint8_t*>(m);
  map_len_ = static_cast<std::size_t>(st.st_size);
  map_pos_ = static_cast<std::size_t>(pos);
}

ImageReader::ImageReader(ImageSource& source) : fd_(-1), source_(&source) {}

ImageReader::~ImageReader() {
  if (map_ != nullptr) {
    // Leave the fd where a stream reader would have left it.
    ::lseek(fd_, static_cast<off_t>(map_pos_), SEEK_SET);
    if (map_released_ < map_len_)
      ::munmap(const_cast<std::uint8_t*>(map_ + map_released_), map_len_ - map_released_);
  }
}

void ImageReader::release_before(const std::uint8_t* p) {
  if (map_ == nullptr || p < map_ || p > map_ + map_len_) return;
  std::size_t upto = static_cast<std::size_t>(p - map_) & ~std::size_t{4095};
  if (upto <= map_released_) return;
  ::munmap(const_cast<std::uint8_t*>(map_ + map_released_), upto - map_released_);
  map_released_ = upto;
}

namespace {

// Makes [p, p + n) of the image's mapping present with one call instead of a fault per page;
// false (errno set) when the file shrank under it: touching a page past its end would be a SIGBUS.
bool populate_range(const std::uint8_t* p, std::size_t n) {
  if (n == 0) return true;
  auto start = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{4095};
  auto end = reinterpret_cast<std::uintptr_t>(p + n);
  return ::madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_READ) == 0;
}

}  // namespace

Status ImageReader::populate_mapped(std::size_t n) {
  if (!populate_range(map_ + map_pos_, n))
    return errno_error("cannot read image at offset {} (did the file shrink while being restored?)", offset_);
  return ok_status();
}

Result<std::size_t> ImageReader::read_full(void* p, std::size_t n) {
  if (map_ != nullptr) {
    std::size_t k = std::min(n, map_len_ - map_pos_);
    OSMO_TRY(populate_mapped(k));
    std::memcpy(p, map_ + map_pos_, k);
    map_pos_ += k;
    offset_ += k;
    return k;
  }
  if (source_ != nullptr) {
    auto got = source_->read(p, n);
    if (!got.ok())
      return Error{got.error().code, fmt::format("cannot read image at offset {}: {}", offset_, got.error().message)};
    offset_ += *got;
    return *got;
  }
  const IoResult r = osmo::read_full(fd_, p, n);
  if (!r.ok()) return Error{r.error, fmt::format("cannot read image at offset {}", offset_ + r.bytes)};
  offset_ += r.bytes;
  return r.bytes;
}

Result<std::uint32_t> ImageReader::read_header() {
  FileHeader h{};
  OSMO_ASSIGN_OR_RETURN(std::size_t got, read_full(&h, sizeof h));
  if (got == 0) return make_error("not an osmo image: the stream is empty");
  if (got >= 8 && std::memcmp(h.magic, kImageMagic, 8) != 0)
    return make_error("not an osmo image: bad magic (expected \"OSMOCKPT\")");
  if (got < sizeof h)
    return make_error("image truncated: the stream ended inside the {}-byte header after {} bytes",
                      sizeof h, got);
  if (h.version != kImageVersion && h.version >= 1 && h.version < kImageVersion && h.header_size == kImageHeaderSize)
    return make_error("image version {} is older than this osmo reads ({}): checkpoint the process again "
                      "with this osmo", h.version, kImageVersion);
  if (checksum64(&h, offsetof(FileHeader, checksum)) != h.checksum)
    return make_error("image corrupted: header checksum mismatch");
  if (h.version > kImageVersion)
    return make_error("image version {} is newer than this osmo supports ({})", h.version,
                      kImageVersion);
  if (h.version == 0 || h.header_size != kImageHeaderSize)
    return make_error("image corrupted: version {} with header size {}", h.version, h.header_size);
  return h.version;
}

Result<SectionHeader> ImageReader::next() {
  if (ended_) return make_error("internal: read past the END section");
  if (have_cur_) return make_error("internal: section {} payload not consumed", index_);
  section_offset_ = offset_;
  RawSectionHeader h{};
  OSMO_ASSIGN_OR_RETURN(std::size_t got, read_full(&h, sizeof h));
  if (got < sizeof h)
    return make_error(
        "image truncated: the stream ended at offset {} before section #{} (no END section: the "
        "image is incomplete)",
        section_offset_ + got, index_);
  if (checksum64(&h, offsetof(RawSectionHeader, header_checksum)) != h.header_checksum)
    return make_error("image corrupted: section #{} at offset {}: header checksum mismatch", index_,
                      section_offset_);
  if (!known_type(h.type))
    return make_error("image uses section type {} (section #{}) unknown to this osmo", h.type, index_);
  if (h.length > kMaxSectionBytes || h.raw_length > kMaxSectionBytes ||
      ((h.flags & kSectionLz4) == 0 && h.length != h.raw_length) || (h.flags & ~kSectionLz4) != 0)
    return make_error("image corrupted: section #{} ({}) at offset {}: bad length/flags", index_,
                      section_name(static_cast<SectionType>(h.type)), section_offset_);
  cur_ = SectionHeader{static_cast<SectionType>(h.type), h.flags, h.length, h.raw_length,
                       h.payload_checksum};
  have_cur_ = true;
  return cur_;
}

// The same path as a restore's page sections, checked at once: a stream's stored bytes are read
// straight into out (into scratch first when they must be decoded), a mapped image's are checked
// in place and then copied or decoded into out.
Status ImageReader::read_payload_into(void* out, std::size_t n) {
  if (!have_cur_) return make_error("internal: no current section");
  if (n != cur_.raw_length)
    return make_error("internal: payload buffer of {} bytes for a {}-byte section", n, cur_.raw_length);
  auto* o = static_cast<std::uint8_t*>(out);
  std::uint8_t* buf = o;
  std::size_t buf_len = n;
  if ((cur_.flags & kSectionLz4) && map_ == nullptr) {
    scratch_.resize(cur_.length);
    buf = reinterpret_cast<std::uint8_t*>(scratch_.data());
    buf_len = scratch_.size();
  }
  OSMO_ASSIGN_OR_RETURN(UncheckedPayload u, take_payload_unchecked(buf, buf_len, o, n));
  OSMO_TRY(u.check());
  if (u.data != o) std::memcpy(o, u.data, n);  // plain, in the mapping
  return ok_status();
}

namespace {

// A stored payload against the checksum its section header carries.
Status verify_payload(SectionType type, std::uint64_t index, std::uint64_t offset, std::uint64_t want,
                      const void* stored, std::size_t n) {
  std::uint64_t sum = checksum64(stored, n);
  if (sum != want)
    return make_error(
        "image corrupted: section #{} ({}) at offset {}: checksum mismatch (stored {:016x}, computed "
        "{:016x})",
        index, section_name(type), offset, want, sum);
  return ok_status();
}

}  // namespace

Result<UncheckedPayload> ImageReader::take_payload_unchecked(std::uint8_t* buf, std::size_t buf_len,
                                                             std::uint8_t* decode_buf, std::size_t decode_buf_len) {
  if (!have_cur_) return make_error("internal: no current section");
  UncheckedPayload u;
  u.compressed = (cur_.flags & kSectionLz4) != 0;
  u.stored_length = cur_.length;
  u.length = cur_.raw_length;
  u.checksum = cur_.payload_checksum;
  u.index = index_;
  u.offset = section_offset_;
  u.type = cur_.type;
  if (u.compressed) {
    if (decode_buf == nullptr || decode_buf_len < cur_.raw_length)
      return make_error("internal: decode buffer of {} bytes for a {}-byte section", decode_buf_len, cur_.raw_length);
    u.decode_to = decode_buf;
  }
  if (map_ != nullptr) {
    if (map_len_ - map_pos_ < cur_.length)
      return make_error(
          "image truncated: section #{} ({}) at offset {}: expected {} payload bytes, the file "
          "ends after {}",
          index_, section_name(cur_.type), section_offset_, cur_.length, map_len_ - map_pos_);
    u.stored = map_ + map_pos_;
    u.in_mapping = true;
    map_pos_ += cur_.length;
    offset_ += cur_.length;
  } else {
    if (buf == nullptr || buf_len < cur_.length)
      return make_error("internal: payload buffer of {} bytes for a {}-byte section", buf_len, cur_.length);
    OSMO_ASSIGN_OR_RETURN(std::size_t got, read_full(buf, cur_.length));
    if (got < cur_.length)
      return make_error(
          "image truncated: section #{} ({}) at offset {}: expected {} payload bytes, the stream "
          "ended after {}",
          index_, section_name(cur_.type), section_offset_, cur_.length, got);
    u.stored = buf;
  }
  u.data = u.stored;
  close_section(cur_.raw_length);
  return u;
}

Status UncheckedPayload::check() {
  if (checked) return ok_status();
  if (in_mapping && !populate_range(stored, stored_length))
    return errno_error("cannot read image section #{} ({}) at offset {} (did the file shrink while being restored?)",
                       index, section_name(type), offset);
  OSMO_TRY(verify_payload(type, index, offset, checksum, stored, stored_length));
  if (compressed) {
    int d = LZ4_decompress_safe(reinterpret_cast<const char*>(stored), reinterpret_cast<char*>(decode_to),
                                static_cast<int>(stored_length), static_cast<int>(length));
    if (d < 0 || static_cast<std::size_t>(d) != length)
      return make_error("image corrupted: section #{} ({}) at offset {}: bad LZ4 data", index, section_name(type),
                        offset);
    data = decode_to;
  }
  checked = true;
  return ok_status();
}

void ImageReader::close_section(std::size_t raw_n) {
  have_cur_ = false;
  index_++;
  totals_.sections++;
  totals_.stored_bytes += kSectionHeaderSize + cur_.length;
  totals_.raw_payload_bytes += raw_n;
}

Status ImageReader::read_payload(std::vector<std::uint8_t>* out) {
  out->resize(cur_.raw_length);
  SectionType t = cur_.type;
  OSMO_TRY(read_payload_into(out->data(), out->size()));
  if (t == SectionType::kEnd) return check_end(*out);
  return ok_status();
}

Status ImageReader::check_end(const std::vector<std::uint8_t>& payload) {
  Decoder d(payload.data(), payload.size(), "end");
  OSMO_ASSIGN_OR_RETURN(std::uint64_t sections, d.u64());
  OSMO_ASSIGN_OR_RETURN(std::uint64_t raw_bytes, d.u64());
  OSMO_TRY(d.finish());
  // The totals now include the END section itself; the writer counted only what came before.
  std::uint64_t seen_sections = totals_.sections - 1;
  std::uint64_t seen_bytes = totals_.raw_payload_bytes - payload.size();
  if (sections != seen_sections || raw_bytes != seen_bytes)
    return make_error(
        "image corrupted: END records {} sections / {} payload bytes, the stream held {} / {}",
        sections, raw_bytes, seen_sections, seen_bytes);
  ended_ = true;
  return ok_status();
}

}  // namespace osmo::ckpt
