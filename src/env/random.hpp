// SPDX-License-Identifier: GPL-2.0-or-later
// Randomness as an interface, so that a seeded run is repeatable: the daemon seeds from the
// kernel, the simulator and the tests from a fixed seed.
#pragma once

#include <cstdint>

namespace osmo::env {

class Random {
 public:
  virtual ~Random() = default;
  virtual std::uint64_t next_u64() = 0;

  // Uniform in [0, n); n must be > 0. Lemire's multiply-shift with rejection (no modulo bias).
  std::uint64_t uniform(std::uint64_t n);
  // Uniform in [0, 1).
  double unit();
};

// xoshiro256** seeded through splitmix64: fast, small state, good statistical quality.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(std::uint64_t seed);
  std::uint64_t next_u64() override;

 private:
  std::uint64_t s_[4];
};

// A SeededRandom seeded from getrandom(2).
SeededRandom make_system_random();

}  // namespace osmo::env
