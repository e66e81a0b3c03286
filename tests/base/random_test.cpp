// SPDX-License-Identifier: GPL-2.0-or-later
#include "env/random.hpp"

#include <gtest/gtest.h>

namespace osmo::env {
namespace {

TEST(Random, SeededIsRepeatable) {
  SeededRandom a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    auto x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differs |= x != c.next_u64();
  }
  EXPECT_TRUE(differs);
}

TEST(Random, UniformStaysInRangeAndCoversIt) {
  SeededRandom r(7);
  int hits[5] = {};
  for (int i = 0; i < 5000; ++i) {
    auto v = r.uniform(5);
    ASSERT_LT(v, 5u);
    ++hits[v];
  }
  for (int h : hits) EXPECT_GT(h, 800);
}

}  // namespace
}  // namespace osmo::env
