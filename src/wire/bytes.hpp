// SPDX-License-Identifier: GPL-2.0-or-later
// Bounds-checked byte encoding shared by every osmo wire format (gossip datagrams, daemon peer
// streams, images). Writer appends little-endian integers, LEB128 varints and length-prefixed
// strings/bytes to a buffer with a hard size limit; Reader consumes them from a span and never
// reads past its end. Both use a sticky failure flag: once a write overflows or a read runs short,
// every later call is a no-op returning zero values, so a decoder can read a whole record and check
// ok() once instead of after every field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace osmo::wire {

// Longest LEB128 encoding of a 64-bit value.
inline constexpr std::size_t kMaxVarintBytes = 10;

class Writer {
 public:
  // `limit_bytes` bounds the total size; a write that would exceed it fails (and all later ones).
  explicit Writer(std::size_t limit_bytes = std::numeric_limits<std::size_t>::max())
      : limit_(limit_bytes) {}

  void u8(std::uint8_t v);
  void u16(std::uint16_t v);
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  void f64(double v);  // IEEE-754 binary64, little-endian bit pattern
  void varint(std::uint64_t v);
  void raw(std::span<const std::uint8_t> bytes);
  // Varint length prefix, then the bytes.
  void bytes(std::span<const std::uint8_t> bytes);
  void str(std::string_view s);

  // Overwrites 4 bytes at `offset` (already written) with `v`, e.g. a length known only at the end.
  void patch_u32(std::size_t offset, std::uint32_t v);

  bool ok() const { return ok_; }
  std::size_t size() const { return buf_.size(); }
  std::size_t limit() const { return limit_; }
  std::size_t remaining() const { return ok_ ? limit_ - buf_.size() : 0; }
  const std::vector<std::uint8_t>& data() const { return buf_; }
  std::vector<std::uint8_t> take() { return std::move(buf_); }

 private:
  bool reserve(std::size_t n);

  std::vector<std::uint8_t> buf_;
  std::size_t limit_;
  bool ok_ = true;
};

// Number of bytes varint(v) takes.
std::size_t varint_size(std::uint64_t v);

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data) : data_(data) {}

  std::uint8_t u8();
  std::uint16_t u16();
  std::uint32_t u32();
  std::uint64_t u64();
  double f64();
  // Rejects encodings longer than 10 bytes or overflowing 64 bits.
  std::uint64_t varint();
  std::span<const std::uint8_t> raw(std::size_t n);
  // Length-prefixed; fails if the length exceeds `max_len` or the remaining input.
  std::span<const std::uint8_t> bytes(std::size_t max_len);
  std::string_view str(std::size_t max_len);
  void skip(std::size_t n) { (void)raw(n); }

  bool ok() const { return error_ == nullptr; }
  // Static description of the first failure, or nullptr.
  const char* error() const { return error_; }
  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return ok() ? data_.size() - pos_ : 0; }
  bool at_end() const { return ok() && pos_ == data_.size(); }
  // Marks the input bad from outside (a decoder found a semantic error).
  void fail(const char* why) {
    if (error_ == nullptr) error_ = why;
  }

 private:
  bool need(std::size_t n);

  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
  const char* error_ = nullptr;
};

}  // namespace osmo::wire
