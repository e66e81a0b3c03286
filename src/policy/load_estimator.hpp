// SPDX-License-Identifier: GPL-2.0-or-later
// Load estimation (pure): turns sampled runnable-task counts into the smoothed figure a node
// gossips, and normalises it by the node's capacity so that nodes of different sizes compare.
//
// MOSIX smoothed its load "fast up, slow down": a node that suddenly gets busy must say so at once
// (or every placer in the cluster keeps sending it work), while a node that suddenly gets idle must
// not advertise it too eagerly (a short lull between two bursts would attract a stampede of jobs,
// and a just-emptied node usually fills again). We do the same with two exponential decays whose
// weight is computed from the elapsed time, so samples may come at any, irregular, interval.
#pragma once

#include <cstdint>
#include <limits>

#include "env/clock.hpp"

namespace osmo::policy {

// Time constants of the smoothing. Rising: 500 ms, i.e. about two load-gossip intervals, so a step
// up is 86% visible within 1 s. Falling: 8 s, so one idle second only removes 12% of the estimate,
// and a node needs ~18 s to report a step down at 90%.
inline constexpr env::TimeMs kLoadRiseTauMs = 500;
inline constexpr env::TimeMs kLoadFallTauMs = 8000;

class LoadEstimator {
 public:
  explicit LoadEstimator(env::TimeMs rise_tau_ms = kLoadRiseTauMs,
                         env::TimeMs fall_tau_ms = kLoadFallTauMs);

  // Feeds one sample of the number of runnable tasks taken at `now`. The first sample is taken as
  // is. A sample with a time at or before the previous one changes nothing (weight 0): clocks are
  // monotonic, so that only happens for duplicate samples.
  void add_sample(env::TimeMs now, double runnable);

  double smoothed() const { return smoothed_; }
  bool has_sample() const { return has_sample_; }
  env::TimeMs last_sample_ms() const { return last_ms_; }

 private:
  env::TimeMs rise_tau_ms_;
  env::TimeMs fall_tau_ms_;
  double smoothed_ = 0;
  env::TimeMs last_ms_ = 0;
  bool has_sample_ = false;
};

// What a node with no usable capacity (0 CPUs, e.g. a cpuset emptied by hotplug) reports: larger
// than any real load, yet finite so it survives encoding and arithmetic.
inline constexpr double kNoCapacityLoad = 1e6;

// Effective capacity in reference CPUs: cpus * speed (speed 1.0 = the reference CPU).
double capacity(double cpus, double speed);

// Load normalised by capacity: 1.0 means every effective CPU is busy, 2.0 means each runnable task
// gets half a reference CPU. Returns kNoCapacityLoad when the capacity is not positive.
double node_load(double smoothed_runnable, double cpus, double speed);

// Memory pressure, a separate signal from CPU load: the used fraction of memory in [0, 1]
// (1 - free/total). A node that does not know its memory (total 0) reports 1, so that nothing
// that needs memory is sent to it.
double memory_pressure(std::uint64_t mem_free_mb, std::uint64_t mem_total_mb);

}  // namespace osmo::policy
