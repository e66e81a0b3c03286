// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/bytes.hpp"

#include <bit>
#include <cstring>

namespace osmo::wire {

bool Writer::reserve(std::size_t n) {
  if (!ok_ || n > limit_ - buf_.size()) {
    ok_ = false;
    return false;
  }
  return true;
}

void Writer::u8(std::uint8_t v) {
  if (reserve(1)) buf_.push_back(v);
}

void Writer::u16(std::uint16_t v) {
  if (!reserve(2)) return;
  for (int i = 0; i < 2; ++i) buf_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void Writer::u32(std::uint32_t v) {
  if (!reserve(4)) return;
  for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void Writer::u64(std::uint64_t v) {
  if (!reserve(8)) return;
  for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void Writer::f64(double v) {
  u64(std::bit_cast<std::uint64_t>(v));
}

void Writer::varint(std::uint64_t v) {
  if (!reserve(varint_size(v))) return;
  while (v >= 0x80) {
    buf_.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  buf_.push_back(static_cast<std::uint8_t>(v));
}

void Writer::raw(std::span<const std::uint8_t> bytes) {
  if (!reserve(bytes.size())) return;
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

void Writer::bytes(std::span<const std::uint8_t> b) {
  if (!reserve(varint_size(b.size()) + b.size())) return;
  varint(b.size());
  raw(b);
}

void Writer::str(std::string_view s) {
  bytes({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

void Writer::patch_u32(std::size_t offset, std::uint32_t v) {
  if (!ok_ || offset > buf_.size() || buf_.size() - offset < 4) {
    ok_ = false;
    return;
  }
  for (int i = 0; i < 4; ++i) buf_[offset + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

bool Reader::need(std::size_t n) {
  if (error_ != nullptr) return false;
  if (n > data_.size() - pos_) {
    error_ = "truncated input";
    return false;
  }
  return true;
}

std::uint8_t Reader::u8() {
  if (!need(1)) return 0;
  return data_[pos_++];
}

std::uint16_t Reader::u16() {
  if (!need(2)) return 0;
  std::uint16_t v = 0;
  for (int i = 0; i < 2; ++i) v |= static_cast<std::uint16_t>(data_[pos_++]) << (8 * i);
  return v;
}

std::uint32_t Reader::u32() {
  if (!need(4)) return 0;
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(data_[pos_++]) << (8 * i);
  return v;
}

std::uint64_t Reader::u64() {
  if (!need(8)) return 0;
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(data_[pos_++]) << (8 * i);
  return v;
}

double Reader::f64() {
  return std::bit_cast<double>(u64());
}

std::uint64_t Reader::varint() {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (!need(1)) return 0;
    std::uint8_t b = data_[pos_++];
    // The 10th byte may only carry the top bit of a 64-bit value.
    if (i == kMaxVarintBytes - 1 && b > 1) {
      fail("varint overflows 64 bits");
      return 0;
    }
    v |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return v;
  }
  fail("varint longer than 10 bytes");
  return 0;
}

std::span<const std::uint8_t> Reader::raw(std::size_t n) {
  if (!need(n)) return {};
  auto out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

std::span<const std::uint8_t> Reader::bytes(std::size_t max_len) {
  std::uint64_t len = varint();
  if (!ok()) return {};
  if (len > max_len) {
    fail("length prefix exceeds its limit");
    return {};
  }
  return raw(static_cast<std::size_t>(len));
}

std::string_view Reader::str(std::size_t max_len) {
  auto b = bytes(max_len);
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace osmo::wire
