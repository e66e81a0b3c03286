// SPDX-License-Identifier: GPL-2.0-or-later
// Membership without a master: clusters of 4, 16 and 64 nodes converge to "everyone alive
// everywhere" within a bounded virtual time, joining through any live member (seed lists that
// include the node itself, seeds that come up late).
#include <gtest/gtest.h>

#include <cstdio>

#include "cluster_harness.hpp"

namespace osmo::gossip {
namespace {

using testing::Cluster;

struct ConvergenceCase {
  int nodes;
  env::TimeMs bound_ms;
};

class Convergence : public ::testing::TestWithParam<ConvergenceCase> {};

TEST_P(Convergence, AllAliveEverywhere) {
  const auto [n, bound_ms] = GetParam();
  Cluster c(/*seed=*/100 + n);
  c.add_nodes(n);
  env::TimeMs took = c.run_until([&] { return c.all_alive(); }, bound_ms);
  ASSERT_GE(took, 0) << "no convergence within " << bound_ms << " ms";
  RecordProperty("converged_ms", static_cast<int>(took));
  std::printf("N=%d converged in %lld ms of virtual time\n", n, static_cast<long long>(took));
  // And it stays that way: no false suspicion turns into a death on a clean network.
  bool false_death = false;
  int steps = 0;
  c.run_for(10'000, [&] {
    if (++steps % 10 == 0) false_death = false_death || c.any_dead(c.all(), c.all());
  });
  EXPECT_FALSE(false_death);
  EXPECT_TRUE(c.all_alive());
  for (int i = 0; i < n; ++i) EXPECT_EQ(c.node(i).counters().dropped_bad_mac, 0u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, Convergence,
                         ::testing::Values(ConvergenceCase{4, 2'000}, ConvergenceCase{16, 3'000},
                                           ConvergenceCase{64, 5'000}),
                         [](const auto& p) { return "N" + std::to_string(p.param.nodes); });

TEST(Membership, SingleNodeIsItsOwnCluster) {
  Cluster c(1);
  c.add_node();
  c.run_for(2'000);
  auto m = c.node(0).members();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(m[0].is_self);
  EXPECT_EQ(m[0].state, MemberState::kAlive);
}

TEST(Membership, JoinRetriesUntilASeedAnswers) {
  // Node 1's only seed (node 0) is cut off at first: node 1 keeps retrying and joins once it can.
  Cluster c(2);
  c.add_node();
  c.net().block(Cluster::addr(0), Cluster::addr(1));
  c.add_node();
  c.run_for(3'500);
  EXPECT_FALSE(c.state(1, 0).has_value());
  c.net().heal();
  EXPECT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
}

TEST(Membership, JoinThroughAnyLiveMember) {
  // Node 3 knows only node 2, not the first node.
  Cluster c(3);
  c.add_nodes(3);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  c.add_node([](Config& cfg) { cfg.seeds = {Cluster::addr(2)}; });
  EXPECT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
}

TEST(Membership, ViewReportsAddressIncarnationAndAges) {
  Cluster c(4);
  c.add_nodes(3);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  auto v = c.view(0, 2);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->addr, Cluster::addr(2));
  EXPECT_FALSE(v->is_self);
  EXPECT_GE(v->state_age_ms, 0);
  auto self = c.node(1).members().front();
  EXPECT_TRUE(self.is_self);
  EXPECT_EQ(self.name, "n1");
}

TEST(Membership, RunsAreRepeatableForASeed) {
  auto trace = [] {
    Cluster c(77);
    c.add_nodes(8);
    c.run_for(5'000);
    std::vector<std::uint64_t> sent;
    for (int i = 0; i < c.size(); ++i) sent.push_back(c.node(i).counters().sent);
    return sent;
  };
  EXPECT_EQ(trace(), trace());
}

TEST(Membership, InvalidConfigIsRefusedAndTheNodeStaysInert) {
  Config cfg;
  cfg.node_name = "x";
  cfg.advertise = {"10.0.0.1", 7946};
  cfg.key = {1, 2, 3};
  auto st = validate(cfg);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("MAC key is 3 bytes"), std::string::npos);

  env::ManualClock clock;
  env::SeededRandom rnd(1);
  sim::Network net(clock, 1);
  auto& t = net.add_endpoint(cfg.advertise, {});
  Logger::set_level(LogLevel::kOff);
  Node n(cfg, clock, t, rnd, Logger("x", "gossip"));
  n.start();
  n.tick();
  EXPECT_EQ(n.counters().sent, 0u);
  Logger::set_level(LogLevel::kWarn);
}

}  // namespace
}  // namespace osmo::gossip
