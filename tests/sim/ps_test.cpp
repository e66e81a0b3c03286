// SPDX-License-Identifier: GPL-2.0-or-later
// The processor-sharing model of the simulator (osmo-sim --ps): run times stretch with the load of
// the node, a migration freezes the job while its memory crosses the modelled link and costs a
// runnable task at both ends, slowdowns are measured, the omniscient central queue never puts
// more jobs on a node than it has CPUs, and the same seed gives the same run.
#include <gtest/gtest.h>

#include "sim/cluster.hpp"
#include "sim/workload.hpp"

namespace osmo::sim {
namespace {

Cluster* converged(Cluster& c) {
  c.start_all();
  c.run_until(c.config().join_spread_ms);
  for (int k = 0; k < 600 && !c.converged(); ++k) c.run_until(c.now() + 100);
  EXPECT_TRUE(c.converged());
  return &c;
}

ClusterConfig equal_nodes(int n, std::uint64_t seed = 1) {
  ClusterConfig cc;
  cc.nodes = n;
  cc.seed = seed;
  cc.heterogeneous = false;  // 4 CPUs x 1.0
  return cc;
}

double num(const Metrics& m, const std::string& k) {
  EXPECT_TRUE(m.has(k)) << k;
  return m.has(k) ? m.json()[k].get<double>() : -1;
}

TEST(SimPs, RunTimesStretchWithTheNodesLoad) {
  // 8 jobs of 10 s of CPU on one 4-CPU node, nowhere else to go: each gets half a CPU, all end
  // together after 20 s (not after 10 s, as without processor sharing).
  Cluster c(equal_nodes(2));
  converged(c);
  WorkloadConfig wc;
  wc.utilization = 0;
  wc.warmup_ms = 0;
  wc.processor_sharing = true;
  for (int k = 0; k < 8; ++k) wc.initial_jobs.push_back({0, 10'000});
  Workload w(c, wc, 1);
  w.install();
  const env::TimeMs t0 = c.now();
  c.run_until(t0 + 19'900);
  EXPECT_EQ(w.jobs_per_node()[0], 8u);
  c.run_until(t0 + 20'100);
  EXPECT_EQ(w.jobs_per_node()[0], 0u);
  const Metrics m = w.results();
  EXPECT_NEAR(num(m, "slowdown_mean"), 2.0, 0.01);
  EXPECT_EQ(num(m, "jobs_unfinished"), 0);
}

TEST(SimPs, AMigrationFreezesTheJobForItsCopyAndTheBalancerStillSpreads) {
  // 8 long jobs on node 0 of two 4-CPU nodes: the balancer moves jobs to node 1; each move takes
  // 100 ms + 256 MB / 100 MB/s = 2.66 s, during which the job is on neither node.
  Cluster c(equal_nodes(2));
  converged(c);
  WorkloadConfig wc;
  wc.utilization = 0;
  wc.warmup_ms = 0;
  wc.processor_sharing = true;
  wc.balance = true;
  for (int k = 0; k < 8; ++k) wc.initial_jobs.push_back({0, 600'000});
  Workload w(c, wc, 1);
  w.install();
  std::size_t least_seen = 8;
  for (int s = 0; s < 240; ++s) {
    c.run_until(c.now() + 250);
    const auto j = w.jobs_per_node();
    least_seen = std::min(least_seen, j[0] + j[1]);
  }
  const Metrics m = w.results();
  EXPECT_GE(num(m, "migrations"), 2);
  EXPECT_NEAR(num(m, "migration_copy_mean_ms"), 2660, 1);
  EXPECT_LT(least_seen, 8u) << "a job in flight is on no node";
  const auto j = w.jobs_per_node();
  EXPECT_EQ(j[0] + j[1], 8u);
  EXPECT_EQ(j[1], 4u);  // 4 and 4: then a move would only trade who waits
}

Metrics placement(PlacementMode mode, std::uint64_t seed) {
  Cluster c(equal_nodes(20, seed));
  converged(c);
  WorkloadConfig wc;
  wc.processor_sharing = true;
  wc.demand = WorkloadConfig::Demand::kPareto;
  wc.utilization = 0.8;
  wc.mean_runtime_ms = 5000;
  wc.mode = mode;
  wc.start_ms = c.now();
  wc.warmup_ms = c.now() + 20'000;
  wc.end_ms = wc.warmup_ms + 40'000;
  wc.drain_ms = 30'000;
  Workload w(c, wc, seed);
  w.install();
  c.run_until(wc.end_ms);
  while (c.now() < wc.end_ms + wc.drain_ms && w.unfinished_measured() > 0) c.run_until(c.now() + 1000);
  return w.results();
}

TEST(SimPs, TheCentralQueueBeatsLocalOnlyAndNeverOversubscribes) {
  const Metrics home = placement(PlacementMode::kHome, 5);
  const Metrics central = placement(PlacementMode::kCentral, 5);
  const Metrics p2c = placement(PlacementMode::kPolicy, 5);
  EXPECT_EQ(num(central, "excess_fraction"), 0);  // never more jobs than CPUs on a node
  EXPECT_LT(num(central, "slowdown_mean"), num(home, "slowdown_mean"));
  EXPECT_LT(num(p2c, "slowdown_mean"), num(home, "slowdown_mean"));
  EXPECT_GT(num(home, "jobs_measured"), 100);
  // Same job stream in every mode.
  EXPECT_EQ(num(home, "jobs_submitted"), num(central, "jobs_submitted"));
  // Same seed, same run.
  EXPECT_EQ(placement(PlacementMode::kPolicy, 5).to_json(), p2c.to_json());
}

}  // namespace
}  // namespace osmo::sim
