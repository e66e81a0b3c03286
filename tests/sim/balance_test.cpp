// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's balancing rules in the simulator: jobs started on one node spread until the
// cluster is balanced, then nothing moves; no job goes straight back where it came from and none
// moves more than twice; a node that many overloaded nodes see idle at once is not flooded (its
// reservations refuse what would overload it). Same code path as the daemon: decide_move with the
// departures log on the source, judge_offer with the reservation book on the target.
#include <algorithm>
#include <numeric>

#include <gtest/gtest.h>

#include "sim/cluster.hpp"
#include "sim/workload.hpp"

namespace osmo::sim {
namespace {

struct SimRun {
  Metrics metrics;
  std::vector<std::size_t> jobs;
  std::vector<std::vector<std::size_t>> history;  // jobs per node after each simulated second
};

// `nodes` equal nodes of 4 CPUs; `initial[i]` long jobs (10 min) start on node i; balancing on,
// no other arrivals; runs `seconds` of simulated time after the cluster has converged.
SimRun run(int nodes, const std::vector<int>& initial, int seconds, std::uint64_t seed,
           bool target_reserves = true) {
  ClusterConfig cc;
  cc.nodes = nodes;
  cc.seed = seed;
  cc.heterogeneous = false;
  Cluster c(cc);
  c.start_all();
  c.run_until(cc.join_spread_ms);
  for (int k = 0; k < 600 && !c.converged(); ++k) c.run_until(c.now() + 100);
  EXPECT_TRUE(c.converged());
  WorkloadConfig wc;
  wc.utilization = 0;  // only the initial jobs
  wc.warmup_ms = 0;
  wc.balance = true;
  wc.target_reserves = target_reserves;
  for (std::size_t i = 0; i < initial.size(); ++i)
    for (int k = 0; k < initial[i]; ++k)
      wc.initial_jobs.push_back({static_cast<std::uint32_t>(i), 600'000});
  Workload w(c, wc, seed);
  w.install();
  SimRun r;
  for (int s = 0; s < seconds; ++s) {
    c.run_until(c.now() + 1000);
    r.history.push_back(w.jobs_per_node());
  }
  r.metrics = w.results();
  r.jobs = w.jobs_per_node();
  return r;
}

std::int64_t i64(const Metrics& m, const std::string& k) {
  EXPECT_TRUE(m.has(k)) << k;
  return m.has(k) ? m.json()[k].get<std::int64_t>() : -1;
}

TEST(SimBalance, JobsStartedOnOneNodeSpreadThenStayPut) {
  for (std::uint64_t seed : {1, 2, 3}) {
    SCOPED_TRACE(seed);
    const SimRun r = run(6, {36}, 180, seed);  // ideal: 6 jobs (load 1.5) per node
    const auto [lo, hi] = std::minmax_element(r.jobs.begin(), r.jobs.end());
    EXPECT_EQ(std::accumulate(r.jobs.begin(), r.jobs.end(), std::size_t{0}), 36u);
    // A move between 4-CPU nodes gains 0.25 only from a node 2 jobs above the other: at the end
    // no node is more than 2 jobs from another, and within 1 of the ideal but for one node.
    EXPECT_LE(*hi - *lo, 2u);
    EXPECT_LE(*hi, 7u);
    EXPECT_GE(*lo, 5u);
    EXPECT_LE(i64(r.metrics, "max_job_migrations"), 2);
    EXPECT_EQ(i64(r.metrics, "balance_returns"), 0);
    EXPECT_LE(i64(r.metrics, "migrations"), 36);
    // Converged: the last move long before the end, and nothing changed over the last minute.
    EXPECT_GE(i64(r.metrics, "last_migration_ms"), 0);
    for (std::size_t s = r.history.size() - 60; s < r.history.size(); ++s) EXPECT_EQ(r.history[s], r.jobs);
  }
}

TEST(SimBalance, ManyOverloadedNodesDoNotFloodTheIdleOne) {
  // Nine nodes at 8 jobs on 4 CPUs (load 2) and one idle: all nine see the idle node at once.
  // The idle node takes what keeps each move worth it (up to 7: 1.75 against sources going
  // 2 -> 1.75) and refuses the rest; it never ends up above the others.
  std::vector<int> initial(10, 8);
  initial[9] = 0;
  const SimRun r = run(10, initial, 120, 4);
  std::size_t idle_peak = 0;
  for (const auto& h : r.history) idle_peak = std::max(idle_peak, h[9]);
  const std::size_t others_max = *std::max_element(r.jobs.begin(), r.jobs.begin() + 9);
  EXPECT_LE(idle_peak, 8u);
  EXPECT_LE(r.jobs[9], others_max + 1);
  EXPECT_GE(r.jobs[9], 5u);  // and it did get its share (72 jobs / 10 nodes = 7.2)
  EXPECT_LE(i64(r.metrics, "max_job_migrations"), 2);
  EXPECT_EQ(i64(r.metrics, "balance_returns"), 0);
  std::printf("idle node: peak %zu jobs, end %zu; refusals %lld, migrations %lld\n", idle_peak, r.jobs[9],
              static_cast<long long>(i64(r.metrics, "balance_refusals")),
              static_cast<long long>(i64(r.metrics, "migrations")));
  // Without the target's check, the same view sends it more than it should hold.
  const SimRun blind = run(10, initial, 120, 4, /*target_reserves=*/false);
  std::size_t blind_peak = 0;
  for (const auto& h : blind.history) blind_peak = std::max(blind_peak, h[9]);
  std::printf("without reservations: peak %zu jobs, end %zu, migrations %lld\n", blind_peak, blind.jobs[9],
              static_cast<long long>(i64(blind.metrics, "migrations")));
  EXPECT_GT(blind_peak, idle_peak);
}

TEST(SimBalance, ANodeThatJoinsGetsWorkWithinSecondsWithoutAStampede) {
  // Five nodes at 8 jobs on 4 CPUs (load 2.0); a sixth joins 30 s in. It must get work within
  // seconds, but not more than leaves it at the others' level (40 jobs / 6 nodes = 6.7).
  ClusterConfig cc;
  cc.nodes = 6;
  cc.seed = 12;
  cc.heterogeneous = false;
  Cluster c(cc);
  c.start_all();
  c.run_until(cc.join_spread_ms);
  for (int k = 0; k < 600 && !c.converged(); ++k) c.run_until(c.now() + 100);
  ASSERT_TRUE(c.converged());
  c.kill(5);
  WorkloadConfig wc;
  wc.utilization = 0;
  wc.warmup_ms = 0;
  wc.balance = true;
  for (std::uint32_t i = 0; i < 5; ++i)
    for (int k = 0; k < 8; ++k) wc.initial_jobs.push_back({i, 600'000});
  Workload w(c, wc, 12);
  w.install();
  c.run_until(c.now() + 30'000);
  EXPECT_EQ(w.jobs_per_node()[5], 0u);
  const env::TimeMs joined = c.now();
  c.restart(5);
  env::TimeMs first_job_ms = -1;
  std::size_t peak = 0;
  for (int s = 0; s < 90; ++s) {
    c.run_until(c.now() + 1000);
    const std::size_t here = w.jobs_per_node()[5];
    if (here > 0 && first_job_ms < 0) first_job_ms = c.now() - joined;
    peak = std::max(peak, here);
  }
  const auto jobs = w.jobs_per_node();
  std::printf("joined node: first job after %lld ms, peak %zu, end %zu (others %zu..%zu)\n",
              static_cast<long long>(first_job_ms), peak, jobs[5],
              *std::min_element(jobs.begin(), jobs.begin() + 5), *std::max_element(jobs.begin(), jobs.begin() + 5));
  EXPECT_GE(first_job_ms, 0);
  EXPECT_LE(first_job_ms, 10'000);
  EXPECT_LE(peak, 8u);  // never above where the others started
  EXPECT_GE(jobs[5], 5u);
  EXPECT_LE(i64(w.results(), "max_job_migrations"), 2);
}

TEST(SimBalance, SameSeedSameMoves) {
  const SimRun a = run(6, {36}, 60, 9);
  const SimRun b = run(6, {36}, 60, 9);
  EXPECT_EQ(a.metrics.to_kv(), b.metrics.to_kv());
  EXPECT_EQ(a.history, b.history);
}

}  // namespace
}  // namespace osmo::sim
