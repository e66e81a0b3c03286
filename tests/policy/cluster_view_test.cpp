// SPDX-License-Identifier: GPL-2.0-or-later
// The glue between gossip and policy (src/cluster_view), which the daemon and the simulator both
// call: members never heard from are never chosen, old figures are penalised and then ignored,
// suspect, dead and left members are skipped, our own figure is always fresh, a sample becomes
// the gossiped load through the estimator, and a placement is recorded in the ledger.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "cluster_view/candidates.hpp"
#include "cluster_view/decisions.hpp"
#include "cluster_view/local_load.hpp"
#include "policy/load_estimator.hpp"

namespace osmo::cluster_view {
namespace {

gossip::MemberView member(std::string name, double cpus, double load, env::TimeMs age_ms,
                          gossip::MemberState state = gossip::MemberState::kAlive) {
  gossip::MemberView m;
  m.name = std::move(name);
  m.state = state;
  gossip::LoadInfo l;
  l.load = load;
  l.runnable = load * cpus;
  l.cpus = cpus;
  l.speed = 1.0;
  l.mem_free_mb = 8192;
  l.mem_total_mb = 16384;
  m.load = l;
  m.load_age_ms = age_ms;
  return m;
}

gossip::MemberView self(std::string name, double cpus, double load) {
  auto m = member(std::move(name), cpus, load, 0);
  m.is_self = true;
  return m;
}

// Where `jobs` single placements (each with a fresh ledger and its own seed) go.
std::map<std::string, int> choices(const std::vector<gossip::MemberView>& view, int jobs) {
  std::map<std::string, int> out;
  for (int i = 0; i < jobs; ++i) {
    env::SeededRandom rng(static_cast<std::uint64_t>(i) + 1);
    policy::PlacementLedger ledger;
    auto p = place_job({}, view, ledger, 100'000, rng);
    EXPECT_TRUE(p.ok()) << p.error().str();
    if (p.ok()) ++out[p->node];
  }
  return out;
}

TEST(ClusterView, CandidatesCarryTheGossipedFigures) {
  std::vector<gossip::MemberView> view = {self("home", 4, 0.5), member("a", 2, 1.5, 1200)};
  view[1].load->mem_free_mb = 10;
  view[1].load->speed = 1.5;
  const auto c = candidates_from_view(view);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].name, "home");
  EXPECT_TRUE(c[0].is_self);
  EXPECT_TRUE(c[0].alive);
  EXPECT_TRUE(c[0].load_known);
  EXPECT_DOUBLE_EQ(c[0].cpus, 4);
  EXPECT_DOUBLE_EQ(c[0].load, 0.5);
  EXPECT_EQ(c[1].name, "a");
  EXPECT_FALSE(c[1].is_self);
  EXPECT_DOUBLE_EQ(c[1].load, 1.5);
  EXPECT_DOUBLE_EQ(c[1].speed, 1.5);
  EXPECT_EQ(c[1].mem_free_mb, 10u);
  EXPECT_EQ(c[1].mem_total_mb, 16384u);
  EXPECT_EQ(c[1].load_age_ms, 1200);
}

TEST(ClusterView, AMemberNeverHeardFromIsKnownButNeverChosen) {
  gossip::MemberView silent;  // joined, alive, but no load yet: all its figures are zero
  silent.name = "silent";
  const std::vector<gossip::MemberView> view = {self("home", 1, 3.0), silent};
  const auto c = candidates_from_view(view);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_TRUE(c[1].alive);
  EXPECT_FALSE(c[1].load_known);
  // A busy home (3 jobs per CPU) still beats an "idle" node whose idleness was never measured.
  EXPECT_EQ(choices(view, 50), (std::map<std::string, int>{{"home", 50}}));
  // And it is not a balancing target either.
  policy::LocalState local{"home", 3.0, 1, 1.0, 8192, 16384, std::nullopt};
  const std::vector<policy::JobInfo> jobs = {{1, 60'000, 60'000, 1.0, 0, 0},
                                             {2, 60'000, 60'000, 1.0, 0, 0}};
  env::SeededRandom rng(1);
  policy::PlacementLedger ledger;
  EXPECT_FALSE(decide_move(local, view, jobs, ledger, 100'000, rng).has_value());
}

TEST(ClusterView, SuspectDeadAndLeftMembersAreSkipped) {
  using S = gossip::MemberState;
  std::vector<gossip::MemberView> view = {
      self("home", 1, 3.0), member("suspect", 8, 0, 100, S::kSuspect),
      member("dead", 8, 0, 100, S::kDead), member("left", 8, 0, 100, S::kLeft)};
  EXPECT_EQ(choices(view, 50), (std::map<std::string, int>{{"home", 50}}));
  view.push_back(member("alive", 1, 0, 100));
  EXPECT_EQ(choices(view, 50), (std::map<std::string, int>{{"alive", 50}}));
  // A node that is leaving takes no new job of its own either: with no other usable node, the
  // job is refused (the daemon answers no_node; the simulator does not start it).
  view[0].state = S::kLeft;
  view.pop_back();
  env::SeededRandom rng(1);
  policy::PlacementLedger ledger;
  auto p = place_job({}, view, ledger, 100'000, rng);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().str(),
            "no node can take the job: no alive member with fresh load information (4 known, 0 "
            "alive, 0 of them with a load younger than 10000 ms and a capacity)");
  EXPECT_EQ(ledger.size(), 0u);  // a refusal records nothing
}

TEST(ClusterView, OldFiguresArePenalisedThenIgnored) {
  // Two identical idle nodes, one heard 0.5 s ago, one 6 s ago (4 s beyond fresh: +0.4): with
  // d = 2 both are compared every time, and the fresh one wins.
  std::vector<gossip::MemberView> view = {self("home", 1, 2.0), member("fresh", 4, 0.2, 500),
                                          member("old", 4, 0.2, 6000)};
  EXPECT_EQ(choices(view, 30), (std::map<std::string, int>{{"fresh", 30}}));
  // Without the fresh one the old one is still better than an overloaded home...
  view.erase(view.begin() + 1);
  EXPECT_EQ(choices(view, 30), (std::map<std::string, int>{{"old", 30}}));
  // ...but not beyond the 10 s bound.
  view[1].load_age_ms = 10'001;
  EXPECT_EQ(choices(view, 30), (std::map<std::string, int>{{"home", 30}}));
}

TEST(ClusterView, OurOwnFigureIsAlwaysFresh) {
  // Our own entry's gossip age only says when we last sampled; it is never penalised or
  // ignored (with a 60 s age home would otherwise be unusable, and the job refused).
  auto home = self("home", 4, 0.0);
  home.load_age_ms = 60'000;
  const std::vector<gossip::MemberView> view = {home};
  EXPECT_EQ(candidates_from_view(view)[0].load_age_ms, 0);
  EXPECT_EQ(choices(view, 10), (std::map<std::string, int>{{"home", 10}}));
}

TEST(ClusterView, APlacementIsRecordedSoABurstSpreads) {
  std::vector<gossip::MemberView> view = {self("home", 2, 0), member("a", 2, 0, 100),
                                          member("b", 2, 0, 100)};
  env::SeededRandom rng(3);
  policy::PlacementLedger ledger;
  std::map<std::string, int> count;
  for (int i = 0; i < 30; ++i) {
    auto p = place_job({}, view, ledger, 50'000, rng);
    ASSERT_TRUE(p.ok()) << p.error().str();
    ++count[p->node];
  }
  EXPECT_EQ(ledger.size(), 30u);
  for (const auto& [name, n] : count) EXPECT_NEAR(n, 10, 2) << name;
}

TEST(ClusterView, ASampleBecomesTheGossipedLoadThroughTheEstimator) {
  policy::LoadEstimator est;
  LocalSample s;
  s.runnable = 4;
  s.cpus = 2;
  s.speed = 2.0;
  s.mem_free_mb = 300;
  s.mem_total_mb = 1000;
  s.jobs = 3;
  auto info = load_info_from_sample(s, 1000, est);
  EXPECT_DOUBLE_EQ(info.runnable, 4);  // the first sample is taken as is
  EXPECT_DOUBLE_EQ(info.load, 1.0);    // 4 runnable on 2 CPUs at speed 2
  EXPECT_DOUBLE_EQ(info.cpus, 2);
  EXPECT_DOUBLE_EQ(info.speed, 2.0);
  EXPECT_EQ(info.mem_free_mb, 300u);
  EXPECT_EQ(info.mem_total_mb, 1000u);
  EXPECT_EQ(info.jobs, 3u);
  // The next sample goes through the estimator: slow down (8 s) after a drop to 0.
  s.runnable = 0;
  info = load_info_from_sample(s, 2000, est);
  EXPECT_NEAR(info.runnable, 4 * std::exp(-1000.0 / 8000.0), 1e-9);
  EXPECT_DOUBLE_EQ(info.runnable, est.smoothed());
  EXPECT_NEAR(info.load, info.runnable / 4, 1e-12);
  // No capacity: the huge finite load, so nothing is sent here.
  s.cpus = 0;
  EXPECT_EQ(load_info_from_sample(s, 3000, est).load, policy::kNoCapacityLoad);
}

}  // namespace
}  // namespace osmo::cluster_view

namespace osmo::cluster_view {
namespace {

TEST(ClusterViewBalance, FlagsTravelAndTheTargetJudgesOnItsOwnFigures) {
  // A sample of a draining node becomes a flag in its gossiped load, and a candidate that takes
  // nothing.
  policy::LoadEstimator est;
  LocalSample s;
  s.runnable = 1;
  s.cpus = 1;
  s.mem_free_mb = 4000;
  s.mem_total_mb = 8000;
  s.draining = true;
  s.auto_migrations = false;
  gossip::MemberView me;
  me.name = "t";
  me.is_self = true;
  me.load = load_info_from_sample(s, 1000, est);
  EXPECT_EQ(me.load->flags, gossip::kLoadFlagDraining | gossip::kLoadFlagNoAutoMigration);
  auto c = candidate_from_member(me);
  EXPECT_TRUE(c.draining);
  EXPECT_FALSE(c.takes_auto_migrations);
  // The same node, not draining, judges an offer with its own load (1 runnable on 1 CPU).
  s.draining = false;
  s.auto_migrations = true;
  me.load = load_info_from_sample(s, 1100, est);
  std::vector<gossip::MemberView> view = {me};
  policy::Move m;
  m.target = "t";
  m.cpu_share = 1;
  m.source_load_before = 4;
  m.source_load_after = 3;
  m.required_gain = 0.2;
  policy::ReservationBook book;
  auto v = judge_offer(offer_for(m, "j1", "src"), view, book, 1100);
  EXPECT_TRUE(v.accepted) << v.why;
  EXPECT_NEAR(v.load_after, 2.0, 1e-9);
  book.reserve(offer_for(m, "j1", "src"), 1100);
  // Promised one: 1 + 1 + 1 = 3 against a source going 4 -> 3: gain 1 > 0.2, still yes; a third
  // offer leaves it at 4: gain 0: refused.
  EXPECT_TRUE(judge_offer(offer_for(m, "j2", "src"), view, book, 1100).accepted);
  book.reserve(offer_for(m, "j2", "src"), 1100);
  EXPECT_FALSE(judge_offer(offer_for(m, "j3", "src"), view, book, 1100).accepted);
  // The balancer's picture of this node is its own member.
  auto local = local_state_from_view(view, 500);
  ASSERT_TRUE(local);
  EXPECT_EQ(local->name, "t");
  EXPECT_DOUBLE_EQ(local->runnable, 1);
  EXPECT_EQ(local->last_migration_out_ms, 500);
}

}  // namespace
}  // namespace osmo::cluster_view
