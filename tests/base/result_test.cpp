// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/result.hpp"

#include <gtest/gtest.h>

namespace osmo {
namespace {

Result<int> half(int x) {
  if (x % 2 != 0) return make_error("{} is odd", x);
  return x / 2;
}

Result<int> quarter(int x) {
  OSMO_ASSIGN_OR_RETURN(int h, half(x));
  return half(h);
}

TEST(Result, ValueAndError) {
  auto r = half(4);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2);
  auto e = half(3);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().str(), "3 is odd");
}

TEST(Result, Propagates) {
  EXPECT_EQ(*quarter(8), 2);
  EXPECT_EQ(quarter(6).error().message, "3 is odd");
}

TEST(Result, ErrnoText) {
  errno = ENOENT;
  Error e = errno_error("open {}", "/x");
  EXPECT_EQ(e.code, ENOENT);
  EXPECT_EQ(e.str(), "open /x: No such file or directory");
}

}  // namespace
}  // namespace osmo
