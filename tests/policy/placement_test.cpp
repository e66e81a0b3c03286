// SPDX-License-Identifier: GPL-2.0-or-later
// Initial placement: capacity-proportional spreading of bursts, never dead or stale nodes, memory
// requirements, preference for home, determinism.
#include "policy/placement.hpp"

#include <algorithm>
#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace osmo::policy {
namespace {

Candidate node(std::string name, double cpus, double load = 0, env::TimeMs age_ms = 0,
               bool alive = true) {
  Candidate c;
  c.name = std::move(name);
  c.alive = alive;
  c.cpus = cpus;
  c.load = load;
  c.load_age_ms = age_ms;
  c.mem_free_mb = 8192;
  c.mem_total_mb = 16384;
  return c;
}

Candidate self(std::string name, double cpus, double load = 0) {
  auto c = node(std::move(name), cpus, load);
  c.is_self = true;
  return c;
}

std::map<std::string, int> place_burst(const std::vector<Candidate>& view, int jobs,
                                       std::uint64_t seed, bool use_ledger,
                                       PlacementConfig cfg = {}) {
  env::SeededRandom rng(seed);
  PlacementLedger ledger;
  std::map<std::string, int> count;
  const env::TimeMs now = 10'000;  // the whole burst happens before any gossip update
  for (int i = 0; i < jobs; ++i) {
    auto p = choose_node({}, view, ledger, now, rng, cfg);
    EXPECT_TRUE(p.ok()) << p.error().str();
    if (!p.ok()) break;
    ++count[p->node];
    if (use_ledger) ledger.record(p->node, now);
  }
  return count;
}

TEST(Placement, BurstSpreadsProportionallyToCapacity) {
  // Home has 4 CPUs; remote nodes 1..8 CPUs, two of them with faster CPUs. All idle, all fresh.
  std::vector<Candidate> view = {self("home", 4), node("a", 1), node("b", 2), node("c", 4),
                                 node("d", 8),    node("e", 2), node("f", 4), node("g", 8)};
  view[5].speed = 2.0;  // e: 2 CPUs at twice the reference speed = capacity 4
  double total_cap = 0;
  for (const auto& c : view) total_cap += c.cpus * c.speed;  // 36
  for (std::uint64_t seed : {1, 2, 3}) {
    auto count = place_burst(view, 100, seed, /*use_ledger=*/true);
    int sum = 0;
    for (const auto& c : view) {
      const double ideal = 100.0 * c.cpus * c.speed / total_cap;
      // Power of two choices with the ledger is nearly greedy: within 3 jobs (home: +0.1 of its
      // capacity for the home margin).
      EXPECT_NEAR(count[c.name], ideal, 3.0) << "seed " << seed << " node " << c.name;
      sum += count[c.name];
    }
    EXPECT_EQ(sum, 100);
  }
}

TEST(Placement, WithoutTheLedgerABurstPilesUp) {
  // The control experiment for the test above: forgetting our own placements sends the burst to
  // whatever looked idle, here home (it wins every tie), far beyond its share.
  std::vector<Candidate> view = {self("home", 4), node("a", 4), node("b", 4), node("c", 4)};
  auto with = place_burst(view, 100, 7, true);
  auto without = place_burst(view, 100, 7, false);
  int max_with = 0, max_without = 0;
  for (const auto& [n, k] : with) max_with = std::max(max_with, k);
  for (const auto& [n, k] : without) max_without = std::max(max_without, k);
  EXPECT_LE(max_with, 28);
  EXPECT_GE(max_without, 90);
}

TEST(Placement, NeverPicksNodesThatAreNotAlive) {
  std::vector<Candidate> view = {self("home", 1, 5.0), node("dead1", 64, 0, 0, false),
                                 node("dead2", 64, 0, 0, false), node("busy", 1, 3.0)};
  auto count = place_burst(view, 200, 11, true);
  EXPECT_EQ(count["dead1"], 0);
  EXPECT_EQ(count["dead2"], 0);
  EXPECT_GT(count["busy"], 0);
  EXPECT_GT(count["home"], 0);
}

TEST(Placement, IgnoresInformationOlderThanTheBound) {
  PlacementConfig cfg;
  std::vector<Candidate> view = {self("home", 1, 2.0),
                                 node("ancient", 32, 0, cfg.staleness.max_age_ms + 1),
                                 node("fresh", 1, 1.0, 100)};
  auto count = place_burst(view, 50, 5, true, cfg);
  EXPECT_EQ(count["ancient"], 0);
  EXPECT_EQ(count["home"] + count["fresh"], 50);
}

TEST(Placement, PrefersFreshInformationOverEqualStaleInformation) {
  // Two identical idle remote nodes, one heard of 8 s ago (6 s past `fresh_ms`: penalty 0.6); with
  // d=2 both are always sampled.
  std::vector<Candidate> view = {self("home", 1, 10.0), node("fresh", 4, 0, 500),
                                 node("stale", 4, 0, 8000)};
  env::SeededRandom rng(3);
  PlacementLedger ledger;
  auto p = choose_node({}, view, ledger, 1000, rng);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->node, "fresh");
  // The stale node's 0.6 penalty is worth 2.4 jobs on 4 CPUs: the first three jobs go to the fresh
  // node, and it stays about two jobs ahead.
  auto three = place_burst(view, 3, 3, true);
  EXPECT_EQ(three["fresh"], 3);
  auto count = place_burst(view, 20, 3, true);
  EXPECT_GE(count["fresh"], count["stale"] + 2);
  EXPECT_GT(count["stale"], 0);  // stale is penalised, not banned
}

TEST(Placement, SamplesOnlyDCandidatesButAlwaysComparesHome) {
  std::vector<Candidate> view = {self("home", 2, 0.5)};
  for (int i = 0; i < 50; ++i) view.push_back(node("n" + std::to_string(i), 2, 0.5));
  env::SeededRandom rng(9);
  PlacementLedger ledger;
  PlacementConfig cfg;
  cfg.choices = 3;
  auto p = choose_node({}, view, ledger, 0, rng, cfg);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->considered, 4);
  EXPECT_TRUE(p->is_home);  // equal loads: the home margin keeps the job at home
}

// 16 nodes heard within the last 1.6 s (half-loaded) and 24 heard 3-9 s ago (idle: even with
// their staleness penalty they look better). Home is overloaded, so a remote node always wins.
std::vector<Candidate> fresh_and_old_view() {
  std::vector<Candidate> view = {self("home", 1, 5.0)};
  for (int i = 0; i < 16; ++i)
    view.push_back(node("fresh" + std::to_string(i), 4, 0.5, 100 * (i + 1)));
  for (int i = 0; i < 24; ++i)
    view.push_back(node("old" + std::to_string(i), 4, 0.0, 3000 + 250 * i));
  return view;
}

TEST(Placement, SamplesOnlyAmongTheFreshestFigures) {
  const auto view = fresh_and_old_view();
  PlacementConfig cfg;
  ASSERT_EQ(cfg.staleness.pool, 16);
  std::map<std::string, int> count;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    env::SeededRandom rng(seed);
    PlacementLedger ledger;
    auto p = choose_node({}, view, ledger, 0, rng, cfg);
    ASSERT_TRUE(p.ok()) << p.error().str();
    EXPECT_EQ(p->node.rfind("fresh", 0), 0u) << p->node;
    EXPECT_EQ(p->remote_compared, 2);
    EXPECT_LE(p->remote_age_max_ms, 1600);
    ++count[p->node];
  }
  EXPECT_GE(count.size(), 12u);  // still a random sample of the pool, not a fixed favourite
  // The control: sampling the whole usable view picks the older, idle-looking nodes.
  cfg.staleness.pool = 0;
  int old = 0;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    env::SeededRandom rng(seed);
    PlacementLedger ledger;
    auto p = choose_node({}, view, ledger, 0, rng, cfg);
    ASSERT_TRUE(p.ok());
    old += p->node.rfind("old", 0) == 0;
  }
  EXPECT_GT(old, 100);
}

TEST(Placement, ThePoolDoesNotDependOnTheOrderOfTheView) {
  auto view = fresh_and_old_view();
  auto reversed = view;
  std::reverse(reversed.begin() + 1, reversed.end());
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    env::SeededRandom a(seed), b(seed);
    PlacementLedger ledger;
    auto p = choose_node({}, view, ledger, 0, a);
    auto q = choose_node({}, reversed, ledger, 0, b);
    ASSERT_TRUE(p.ok() && q.ok());
    EXPECT_EQ(p->node, q->node);
  }
}

TEST(Placement, ReportsTheAgesOfTheFiguresItCompared) {
  std::vector<Candidate> view = {self("home", 4, 0.0), node("a", 4, 0.5, 300),
                                 node("b", 4, 0.5, 1200)};
  env::SeededRandom rng(1);
  PlacementLedger ledger;
  auto p = choose_node({}, view, ledger, 0, rng);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->remote_compared, 2);
  EXPECT_EQ(p->remote_age_sum_ms, 1500);
  EXPECT_EQ(p->remote_age_max_ms, 1200);
  EXPECT_EQ(p->considered, 3);
}

TEST(Placement, HomeMarginOnlyDecidesCloseCalls) {
  env::SeededRandom rng(1);
  PlacementLedger ledger;
  // Remote better by 0.05 < margin 0.1: stay home.
  std::vector<Candidate> close = {self("home", 4, 0.30), node("r", 4, 0.25)};
  auto p = choose_node({}, close, ledger, 0, rng);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->node, "home");
  EXPECT_NEAR(p->score, 0.30 + 0.25, 1e-12);  // reported without the margin
  // Remote better by 0.5: go remote.
  std::vector<Candidate> clear = {self("home", 4, 0.75), node("r", 4, 0.25)};
  p = choose_node({}, clear, ledger, 0, rng);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->node, "r");
  EXPECT_FALSE(p->is_home);
}

TEST(Placement, RespectsTheMemoryRequirementIncludingPendingPlacements) {
  std::vector<Candidate> view = {self("home", 4, 0.0), node("big", 4, 0.5)};
  view[0].mem_free_mb = 1000;
  view[1].mem_free_mb = 5000;
  env::SeededRandom rng(1);
  PlacementLedger ledger;
  PlacementRequest req;
  req.mem_mb = 2000;
  auto p = choose_node(req, view, ledger, 0, rng);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->node, "big");  // home is idle but too small
  ledger.record("big", 0, 1.0, 2000);
  p = choose_node(req, view, ledger, 0, rng);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->node, "big");  // 3000 MB left
  ledger.record("big", 0, 1.0, 2000);
  p = choose_node(req, view, ledger, 0, rng);  // 1000 MB left: nobody fits
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().str(),
            "no node can take the job: none has 2000 MB free (2 alive members, largest free 5000 "
            "MB)");
}

TEST(Placement, FailsClearlyWithoutAnyUsableNode) {
  std::vector<Candidate> view = {node("dead", 4, 0, 0, false), node("old", 4, 0, 60'000)};
  env::SeededRandom rng(1);
  PlacementLedger ledger;
  auto p = choose_node({}, view, ledger, 0, rng);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().str(),
            "no node can take the job: no alive member with fresh load information (2 known, 1 "
            "alive, 0 of them with a load younger than 10000 ms and a capacity)");
}

TEST(Placement, AMemberThatNeverReportedALoadIsNeverChosen) {
  // An idle-looking member whose load was never heard (load_known false, figures all zero and
  // age 0) must not win over a busy home: zeros are not a measurement.
  auto silent = node("silent", 8);
  silent.load_known = false;
  std::vector<Candidate> view = {self("home", 1, 3.0), silent};
  env::SeededRandom rng(1);
  PlacementLedger ledger;
  for (int i = 0; i < 20; ++i) {
    auto p = choose_node({}, view, ledger, 0, rng);
    ASSERT_TRUE(p.ok()) << p.error().str();
    EXPECT_EQ(p->node, "home");
  }
  view[0].alive = false;  // home leaving: nobody left
  auto p = choose_node({}, view, ledger, 0, rng);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().str(),
            "no node can take the job: no alive member with fresh load information (2 known, 1 "
            "alive, 0 of them with a load younger than 10000 ms and a capacity)");
}

TEST(Placement, SameSeedSameChoices) {
  std::vector<Candidate> view = {self("home", 2, 1.0)};
  for (int i = 0; i < 30; ++i) view.push_back(node("n" + std::to_string(i), 1 + i % 4, 0.1 * i));
  auto a = place_burst(view, 200, 42, true);
  auto b = place_burst(view, 200, 42, true);
  auto c = place_burst(view, 200, 43, true);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(PlacementLedger, EntriesCountUntilTheTargetReportsALaterLoad) {
  PlacementLedger ledger(/*settle_ms=*/1500, /*hold_max_ms=*/30'000);
  ledger.record("a", 1000, 1.0, 100);
  ledger.record("a", 2000, 2.0, 50);
  EXPECT_EQ(ledger.pending("a", 0).jobs, 2);
  EXPECT_DOUBLE_EQ(ledger.pending("a", 2400).cpu, 3.0);
  EXPECT_EQ(ledger.pending("a", 2500).jobs, 1);  // measured 1.5 s after the first placement
  EXPECT_EQ(ledger.pending("a", 2500).mem_mb, 50u);
  EXPECT_EQ(ledger.pending("a", 3500).jobs, 0);
  EXPECT_EQ(ledger.pending("b", 0).jobs, 0);
  EXPECT_EQ(ledger.size(), 2u);
  ledger.prune(31'500);  // the first entry is 30.5 s old
  EXPECT_EQ(ledger.size(), 1u);
  ledger.prune(40'000);
  EXPECT_EQ(ledger.size(), 0u);
}

}  // namespace
}  // namespace osmo::policy
