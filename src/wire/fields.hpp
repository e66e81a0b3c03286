// SPDX-License-Identifier: GPL-2.0-or-later
// Tagged fields: the append-only body encoding of osmo messages. A body is a sequence of
//   tag (u8, never 0) | length (varint) | value (length bytes)
// so a reader skips any tag it does not know, and a newer writer can append fields without
// breaking older readers. Values are varints (unsigned integers), 8-byte little-endian doubles,
// raw strings/bytes, or a nested field sequence (a record). A tag's meaning is fixed forever once
// released: fields are added with new tags, never renumbered or reinterpreted.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "wire/bytes.hpp"

namespace osmo::wire {

using FieldTag = std::uint8_t;

// Writes tagged fields into a Writer (whose limit bounds the body).
class FieldWriter {
 public:
  explicit FieldWriter(Writer& w) : w_(w) {}
  void u64(FieldTag tag, std::uint64_t v);
  void f64(FieldTag tag, double v);
  void str(FieldTag tag, std::string_view s);
  void bytes(FieldTag tag, std::span<const std::uint8_t> b);
  // A nested record, already encoded by another FieldWriter.
  void record(FieldTag tag, const Writer& inner) { bytes(tag, inner.data()); }

  // Encoded size of a field with `value_len` value bytes.
  static std::size_t field_size(std::size_t value_len) {
    return 1 + varint_size(value_len) + value_len;
  }

 private:
  Writer& w_;
};

struct Field {
  FieldTag tag = 0;
  std::span<const std::uint8_t> value;

  // Typed views; each returns false (leaving *out unchanged) if the value has the wrong shape.
  bool as_u64(std::uint64_t* out) const;
  bool as_f64(double* out) const;
  // Fails if longer than max_len.
  bool as_str(std::size_t max_len, std::string* out) const;
};

// Iterates the fields of a body: `while (r.next(&f)) {...}` then check `r.ok()`.
class FieldReader {
 public:
  explicit FieldReader(std::span<const std::uint8_t> body) : r_(body) {}
  // False at the end of the body or on a malformed field (then ok() is false).
  bool next(Field* f);
  bool ok() const { return r_.ok(); }
  const char* error() const { return r_.error(); }

 private:
  Reader r_;
};

}  // namespace osmo::wire
