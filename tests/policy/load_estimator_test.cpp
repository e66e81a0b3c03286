// SPDX-License-Identifier: GPL-2.0-or-later
// LoadEstimator: fast up, slow down, with exact numbers, and independence from the sampling rate.
#include "policy/load_estimator.hpp"

#include <cmath>

#include <gtest/gtest.h>

namespace osmo::policy {
namespace {

TEST(LoadEstimator, FirstSampleIsTakenAsIs) {
  LoadEstimator e;
  EXPECT_FALSE(e.has_sample());
  e.add_sample(1000, 3.0);
  EXPECT_TRUE(e.has_sample());
  EXPECT_DOUBLE_EQ(e.smoothed(), 3.0);
}

TEST(LoadEstimator, RisesWithTheShortTimeConstant) {
  LoadEstimator e;  // 500 ms up, 8000 ms down
  e.add_sample(0, 0.0);
  e.add_sample(500, 4.0);  // one rise constant: 1 - 1/e of the step
  EXPECT_NEAR(e.smoothed(), 4.0 * (1 - std::exp(-1.0)), 1e-12);  // 2.528
  e.add_sample(1000, 4.0);
  EXPECT_NEAR(e.smoothed(), 4.0 * (1 - std::exp(-2.0)), 1e-12);  // 3.459: 86% after 1 s
}

TEST(LoadEstimator, FallsWithTheLongTimeConstant) {
  LoadEstimator e;
  e.add_sample(0, 4.0);
  e.add_sample(1000, 0.0);  // one idle second removes only 1 - e^(-1/8) = 11.75%
  EXPECT_NEAR(e.smoothed(), 4.0 * std::exp(-1.0 / 8.0), 1e-12);  // 3.530
  e.add_sample(8000, 0.0);
  EXPECT_NEAR(e.smoothed(), 4.0 * std::exp(-1.0), 1e-12);  // 1.472 after one fall constant
}

TEST(LoadEstimator, RisingIsSixteenTimesFasterThanFalling) {
  auto time_to_half = [](double from, double to) {
    LoadEstimator e;
    e.add_sample(0, from);
    for (env::TimeMs t = 10;; t += 10) {
      e.add_sample(t, to);
      if (std::abs(e.smoothed() - from) >= std::abs(to - from) / 2) return t;
    }
  };
  const auto up = time_to_half(0, 2);
  const auto down = time_to_half(2, 0);
  EXPECT_NEAR(static_cast<double>(up), 500 * std::log(2.0), 10);     // ~347 ms
  EXPECT_NEAR(static_cast<double>(down), 8000 * std::log(2.0), 10);  // ~5545 ms
}

TEST(LoadEstimator, IrregularSamplingGivesTheSameResultForAHeldValue) {
  LoadEstimator fine, coarse, ragged;
  for (auto* e : {&fine, &coarse, &ragged}) e->add_sample(0, 0.0);
  for (int t = 100; t <= 3000; t += 100) fine.add_sample(t, 5.0);
  coarse.add_sample(3000, 5.0);
  for (env::TimeMs t : {7, 400, 401, 1999, 2500, 3000}) ragged.add_sample(t, 5.0);
  EXPECT_NEAR(fine.smoothed(), coarse.smoothed(), 1e-9);
  EXPECT_NEAR(ragged.smoothed(), coarse.smoothed(), 1e-9);
}

TEST(LoadEstimator, DuplicateOrBackwardSamplesChangeNothing) {
  LoadEstimator e;
  e.add_sample(1000, 1.0);
  e.add_sample(1000, 9.0);
  e.add_sample(900, 9.0);
  EXPECT_DOUBLE_EQ(e.smoothed(), 1.0);
  EXPECT_EQ(e.last_sample_ms(), 1000);
}

TEST(LoadEstimator, NegativeOrNanSamplesCountAsIdle) {
  LoadEstimator e;
  e.add_sample(0, -3.0);
  EXPECT_DOUBLE_EQ(e.smoothed(), 0.0);
  e.add_sample(100, std::nan(""));
  EXPECT_DOUBLE_EQ(e.smoothed(), 0.0);
}

TEST(NodeLoad, NormalisesByCpusTimesSpeed) {
  EXPECT_DOUBLE_EQ(node_load(4, 4, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(node_load(4, 4, 2.0), 0.5);
  EXPECT_DOUBLE_EQ(node_load(1, 2, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(node_load(0, 8, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(capacity(4, 1.5), 6.0);
}

TEST(NodeLoad, NoCapacityIsTheLargestLoad) {
  EXPECT_EQ(node_load(0, 0, 1.0), kNoCapacityLoad);
  EXPECT_EQ(node_load(1, 4, 0.0), kNoCapacityLoad);
  EXPECT_GT(kNoCapacityLoad, node_load(1000, 1, 1.0));
}

TEST(MemoryPressure, IsTheUsedFraction) {
  EXPECT_DOUBLE_EQ(memory_pressure(1024, 4096), 0.75);
  EXPECT_DOUBLE_EQ(memory_pressure(4096, 4096), 0.0);
  EXPECT_DOUBLE_EQ(memory_pressure(5000, 4096), 0.0);  // clamped
  EXPECT_DOUBLE_EQ(memory_pressure(0, 4096), 1.0);
  EXPECT_DOUBLE_EQ(memory_pressure(100, 0), 1.0);  // unknown total: treat as full
}

}  // namespace
}  // namespace osmo::policy
