// SPDX-License-Identifier: GPL-2.0-or-later
// Tagged fields: round trip, unknown fields skipped (append-only evolution), malformed input
// rejected.
#include "wire/fields.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace osmo::wire {
namespace {

TEST(Fields, RoundTripAndUnknownTagsAreSkipped) {
  Writer w;
  FieldWriter f(w);
  f.u64(1, 123456789);
  f.str(200, "from a newer version");  // an old reader does not know tag 200
  f.f64(2, 2.25);
  Writer inner;
  FieldWriter fi(inner);
  fi.str(1, "nested");
  f.record(3, inner);

  FieldReader r(w.data());
  Field fld;
  std::uint64_t u = 0;
  double d = 0;
  std::string s;
  int known = 0;
  while (r.next(&fld)) {
    switch (fld.tag) {
      case 1:
        ASSERT_TRUE(fld.as_u64(&u));
        ++known;
        break;
      case 2:
        ASSERT_TRUE(fld.as_f64(&d));
        ++known;
        break;
      case 3: {
        FieldReader nr(fld.value);
        Field nf;
        ASSERT_TRUE(nr.next(&nf));
        ASSERT_TRUE(nf.as_str(16, &s));
        ++known;
        break;
      }
      default:
        break;
    }
  }
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(known, 3);
  EXPECT_EQ(u, 123456789u);
  EXPECT_EQ(d, 2.25);
  EXPECT_EQ(s, "nested");
}

TEST(Fields, TagZeroAndTruncationAreMalformed) {
  std::vector<std::uint8_t> zero = {0, 1, 5};
  FieldReader a(zero);
  Field f;
  EXPECT_FALSE(a.next(&f));
  EXPECT_FALSE(a.ok());

  std::vector<std::uint8_t> truncated = {1, 4, 1, 2};  // claims 4 value bytes, has 2
  FieldReader b(truncated);
  EXPECT_FALSE(b.next(&f));
  EXPECT_FALSE(b.ok());

  std::vector<std::uint8_t> empty;
  FieldReader c(empty);
  EXPECT_FALSE(c.next(&f));
  EXPECT_TRUE(c.ok());
}

TEST(Fields, TypedViewsCheckShape) {
  Field f;
  std::vector<std::uint8_t> two_varints = {0x01, 0x02};  // trailing byte after the varint
  f.value = two_varints;
  std::uint64_t u = 7;
  EXPECT_FALSE(f.as_u64(&u));
  EXPECT_EQ(u, 7u);
  double d = 0;
  EXPECT_FALSE(f.as_f64(&d));  // not 8 bytes
  std::string s;
  EXPECT_FALSE(f.as_str(1, &s));
  EXPECT_TRUE(f.as_str(2, &s));
}

}  // namespace
}  // namespace osmo::wire
