// SPDX-License-Identifier: GPL-2.0-or-later
// Local sample -> gossiped load (see local_load.hpp).
#include "cluster_view/local_load.hpp"

namespace osmo::cluster_view {

gossip::LoadInfo load_info_from_sample(const LocalSample& sample, env::TimeMs now,
                                       policy::LoadEstimator& estimator) {
  estimator.add_sample(now, sample.runnable);
  gossip::LoadInfo info;
  info.runnable = estimator.smoothed();
  info.cpus = sample.cpus;
  info.speed = sample.speed;
  info.load = policy::node_load(info.runnable, sample.cpus, sample.speed);
  info.mem_free_mb = sample.mem_free_mb;
  info.mem_total_mb = sample.mem_total_mb;
  info.jobs = sample.jobs;
  info.flags = (sample.draining ? gossip::kLoadFlagDraining : 0u) |
               (sample.auto_migrations ? 0u : gossip::kLoadFlagNoAutoMigration);
  return info;
}

}  // namespace osmo::cluster_view
