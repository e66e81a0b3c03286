// SPDX-License-Identifier: GPL-2.0-or-later
// Load estimation: see load_estimator.hpp for the model and the constants.
#include "policy/load_estimator.hpp"

#include <algorithm>
#include <cmath>

namespace osmo::policy {

LoadEstimator::LoadEstimator(env::TimeMs rise_tau_ms, env::TimeMs fall_tau_ms)
    : rise_tau_ms_(std::max<env::TimeMs>(rise_tau_ms, 1)),
      fall_tau_ms_(std::max<env::TimeMs>(fall_tau_ms, 1)) {}

void LoadEstimator::add_sample(env::TimeMs now, double runnable) {
  if (!(runnable >= 0)) runnable = 0;  // also catches NaN from a broken sampler
  if (!has_sample_) {
    smoothed_ = runnable;
    last_ms_ = now;
    has_sample_ = true;
    return;
  }
  if (now <= last_ms_) return;
  const double dt = static_cast<double>(now - last_ms_);
  const double tau = static_cast<double>(runnable > smoothed_ ? rise_tau_ms_ : fall_tau_ms_);
  // Exact discretisation of d(est)/dt = (x - est)/tau for a sample held over dt: the weight does
  // not depend on how the interval was cut into samples, so irregular sampling is fine.
  const double weight = 1.0 - std::exp(-dt / tau);
  smoothed_ += weight * (runnable - smoothed_);
  last_ms_ = now;
}

double capacity(double cpus, double speed) {
  if (!(cpus > 0) || !(speed > 0)) return 0;
  return cpus * speed;
}

double node_load(double smoothed_runnable, double cpus, double speed) {
  const double cap = capacity(cpus, speed);
  if (cap <= 0) return kNoCapacityLoad;
  return std::max(0.0, smoothed_runnable) / cap;
}

double memory_pressure(std::uint64_t mem_free_mb, std::uint64_t mem_total_mb) {
  if (mem_total_mb == 0) return 1.0;
  const double free_fraction =
      static_cast<double>(std::min(mem_free_mb, mem_total_mb)) / static_cast<double>(mem_total_mb);
  return 1.0 - free_fraction;
}

}  // namespace osmo::policy
