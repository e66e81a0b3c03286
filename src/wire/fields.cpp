// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/fields.hpp"

#include <bit>

namespace osmo::wire {

void FieldWriter::u64(FieldTag tag, std::uint64_t v) {
  w_.u8(tag);
  w_.varint(varint_size(v));
  w_.varint(v);
}

void FieldWriter::f64(FieldTag tag, double v) {
  w_.u8(tag);
  w_.varint(8);
  w_.f64(v);
}

void FieldWriter::str(FieldTag tag, std::string_view s) {
  w_.u8(tag);
  w_.str(s);
}

void FieldWriter::bytes(FieldTag tag, std::span<const std::uint8_t> b) {
  w_.u8(tag);
  w_.bytes(b);
}

bool Field::as_u64(std::uint64_t* out) const {
  Reader r(value);
  std::uint64_t v = r.varint();
  if (!r.at_end()) return false;  // bad varint, or trailing bytes inside the value
  *out = v;
  return true;
}

bool Field::as_f64(double* out) const {
  if (value.size() != 8) return false;
  Reader r(value);
  *out = r.f64();
  return true;
}

bool Field::as_str(std::size_t max_len, std::string* out) const {
  if (value.size() > max_len) return false;
  out->assign(reinterpret_cast<const char*>(value.data()), value.size());
  return true;
}

bool FieldReader::next(Field* f) {
  if (!r_.ok() || r_.at_end()) return false;
  FieldTag tag = r_.u8();
  if (tag == 0) {
    r_.fail("field tag 0 is reserved");
    return false;
  }
  // A value can never be longer than what is left of the body.
  auto value = r_.bytes(r_.remaining());
  if (!r_.ok()) return false;
  f->tag = tag;
  f->value = value;
  return true;
}

}  // namespace osmo::wire
