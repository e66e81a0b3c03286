// SPDX-License-Identifier: GPL-2.0-or-later
// MOSIX-style load dissemination: every node ends up with an aged view of every other node's
// load, and the ages stay bounded in steady state, with and without message loss.
#include <gtest/gtest.h>

#include <cstdio>

#include "cluster_harness.hpp"

namespace osmo::gossip {
namespace {

using testing::Cluster;

struct LoadCase {
  int nodes;
  double loss;
  env::TimeMs complete_within_ms;  // every node has every other node's load
  env::TimeMs max_age_ms;          // worst age any node holds about any other, in steady state
};

class LoadDissemination : public ::testing::TestWithParam<LoadCase> {};

TEST_P(LoadDissemination, EveryNodeSeesEveryLoadWithBoundedAge) {
  const auto p = GetParam();
  Cluster c(40 + p.nodes);
  c.net().set_default_profile(sim::LinkProfile{1, 4, p.loss, 0});
  c.add_nodes(p.nodes);
  int calls = 0;  // a full check costs n members() calls: do it every 100 ms of virtual time
  env::TimeMs took = c.run_until(
      [&] { return ++calls % 10 == 0 && c.all_alive() && c.loads_complete(p.max_age_ms, c.all()); },
      p.complete_within_ms);
  ASSERT_GE(took, 0) << "load view incomplete after " << p.complete_within_ms << " ms";
  // Steady state: sample the worst age for 30 s.
  env::TimeMs worst = 0;
  double sum = 0;
  int samples = 0;
  int steps = 0;
  c.run_for(30'000, [&] {
    if (++steps % 50 != 0) return;
    env::TimeMs a = c.max_load_age(c.all());
    ASSERT_GE(a, 0);
    worst = std::max(worst, a);
    sum += static_cast<double>(a);
    ++samples;
  });
  std::printf(
      "N=%d loss=%.0f%%: complete after %lld ms; worst age over 30 s %lld ms (mean of "
      "worst %.0f ms)\n",
      p.nodes, p.loss * 100, static_cast<long long>(took), static_cast<long long>(worst),
      sum / samples);
  EXPECT_LE(worst, p.max_age_ms);
  EXPECT_TRUE(c.loads_complete(p.max_age_ms, c.all()));
}

INSTANTIATE_TEST_SUITE_P(Sizes, LoadDissemination,
                         ::testing::Values(LoadCase{4, 0, 3'000, 3'000},
                                           LoadCase{16, 0, 8'000, 6'000},
                                           LoadCase{64, 0, 20'000, 20'000},
                                           LoadCase{16, 0.15, 10'000, 8'000}),
                         [](const auto& info_) {
                           return "N" + std::to_string(info_.param.nodes) + "_loss" +
                                  std::to_string(static_cast<int>(info_.param.loss * 100));
                         });

TEST(Load, OwnLoadIsReportedWithItsAgeAndSanitized) {
  Cluster c(50);
  c.add_nodes(2);
  LoadInfo bad;
  bad.load = std::nan("");
  bad.runnable = -3;
  bad.cpus = 4;
  c.node(0).set_local_load(bad);
  auto self = c.node(0).members().front();
  ASSERT_TRUE(self.load);
  EXPECT_EQ(self.load->load, 0);
  EXPECT_EQ(self.load->runnable, 0);
  EXPECT_EQ(self.load->cpus, 4);
  EXPECT_EQ(self.load_age_ms, 0);
}

TEST(Load, ReceiverKeepsTheFreshestEntry) {
  // Two paths deliver information about node 2: the fresher one must win regardless of order.
  Cluster c(51);
  c.add_nodes(3);
  ASSERT_GE(c.run_until([&] { return c.loads_complete(5'000, c.all()); }, 10'000), 0);
  c.run_for(2'000);
  auto v = c.view(0, 2);
  ASSERT_TRUE(v && v->load);
  // Ages never exceed what the refresh period and a few hops explain in a 3-node cluster.
  EXPECT_LE(v->load_age_ms, Cluster::kLoadRefreshMs + 1'500);
}

}  // namespace
}  // namespace osmo::gossip
