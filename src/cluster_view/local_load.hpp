// SPDX-License-Identifier: GPL-2.0-or-later
// The local node's load as it is gossiped: one load sample (the daemon's platform sampler, or
// the simulator's count of running jobs) goes through the node's policy::LoadEstimator and comes
// out as the gossip::LoadInfo handed to gossip::Node::set_local_load. One function for both, so
// that the simulated nodes smooth and normalise their load exactly as daemons do.
#pragma once

#include <cstdint>

#include "env/clock.hpp"
#include "gossip/node.hpp"
#include "policy/load_estimator.hpp"

namespace osmo::cluster_view {

// What a node measured about itself at one instant.
struct LocalSample {
  double runnable = 0;  // tasks that want a CPU now (instantaneous, not smoothed)
  double cpus = 0;      // effective CPUs (cpuset, quota)
  double speed = 1.0;   // configured relative speed (1.0 = the reference CPU)
  std::uint64_t mem_free_mb = 0;
  std::uint64_t mem_total_mb = 0;  // 0 when unknown
  std::uint32_t jobs = 0;          // osmo jobs running here
  bool draining = false;           // takes no new job, no migration (gossip::kLoadFlagDraining)
  bool auto_migrations = true;     // false: `balance = false` (gossip::kLoadFlagNoAutoMigration)
};

// Feeds `sample.runnable` taken at `now` to `estimator` and returns the figures to gossip: the
// smoothed runnable count, and the load normalised by capacity (policy::node_load).
gossip::LoadInfo load_info_from_sample(const LocalSample& sample, env::TimeMs now,
                                       policy::LoadEstimator& estimator);

}  // namespace osmo::cluster_view
