// SPDX-License-Identifier: GPL-2.0-or-later
// Failure detection, refutation and leaving: a briefly paused node is suspected and refutes, a
// long-paused or crashed node is declared dead everywhere (and nobody else is), a leave is never
// taken for a failure, and a node that comes back (resumed with its state, or restarted with a
// fresh one) becomes alive again everywhere. Message loss does not cause false deaths.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "cluster_harness.hpp"

namespace osmo::gossip {
namespace {

using testing::Cluster;

// Tracks, step by step, the worst any observer thought of `subject` and whether anyone else was
// ever declared dead.
struct Watch {
  const Cluster& c;
  int subject;
  bool subject_suspected = false;
  bool subject_dead = false;
  bool other_dead = false;

  void operator()() {
    for (int a = 0; a < c.size(); ++a) {
      if (!c.running(a)) continue;
      auto views = c.views_of(a);
      for (auto& [name, v] : views) {
        if (v.is_self) continue;
        bool is_subject = name == Cluster::name(subject);
        if (is_subject && v.state == MemberState::kSuspect) subject_suspected = true;
        if (is_subject && v.state == MemberState::kDead) subject_dead = true;
        if (!is_subject && v.state == MemberState::kDead) other_dead = true;
      }
    }
  }
};

TEST(Failure, BriefPauseIsSuspectedThenRefutedNeverDead) {
  Cluster c(11);
  c.add_nodes(5);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  std::uint64_t inc_before = c.view(0, 4)->incarnation;

  Watch w{c, 4};
  c.pause(4);  // SIGSTOP: datagrams to it wait in its socket buffer
  c.run_for(1'800, std::ref(w));
  EXPECT_TRUE(w.subject_suspected) << "nobody noticed the pause";
  c.resume(4);  // SIGCONT
  env::TimeMs took = c.run_until([&] { return c.all_alive(); }, 5'000, std::ref(w));
  EXPECT_GE(took, 0);
  c.run_for(3'000, std::ref(w));
  EXPECT_FALSE(w.subject_dead) << "a refutable suspicion became a death";
  EXPECT_FALSE(w.other_dead);
  EXPECT_TRUE(c.all_alive());
  EXPECT_GE(c.node(4).counters().refutations, 1u);
  EXPECT_GT(c.view(0, 4)->incarnation, inc_before);
}

TEST(Failure, LongPauseIsDeadEverywhereThenResumedNodeRejoins) {
  Cluster c(12);
  c.add_nodes(6);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);

  Watch w{c, 5};
  c.pause(5);
  auto others = c.all_but(5);
  env::TimeMs took = c.run_until([&] { return c.everyone_sees(5, MemberState::kDead, others); },
                                 15'000, std::ref(w));
  ASSERT_GE(took, 0) << "the paused node was not declared dead everywhere";
  std::printf("paused node dead everywhere after %lld ms\n", static_cast<long long>(took));
  c.run_for(5'000, std::ref(w));
  EXPECT_FALSE(w.other_dead) << "a live node was declared dead";
  EXPECT_TRUE(c.all_alive(others));

  // SIGCONT: the node reads a stale socket buffer, learns it was declared dead, refutes with a
  // higher incarnation, and everyone takes it back.
  std::uint64_t dead_inc = c.view(0, 5)->incarnation;
  c.resume(5);
  took = c.run_until([&] { return c.all_alive(); }, 10'000);
  ASSERT_GE(took, 0) << "the resumed node did not come back";
  std::printf("resumed node alive everywhere after %lld ms\n", static_cast<long long>(took));
  EXPECT_GT(c.view(0, 5)->incarnation, dead_inc);
  w.other_dead = false;
  c.run_for(5'000, std::ref(w));
  EXPECT_FALSE(w.other_dead) << "waking up made the resumed node accuse someone";
}

TEST(Failure, PausedNodeDoesNotAccuseOthersWhenItWakes) {
  // The paused node had a probe in flight and suspicion timers running: after SIGCONT it must not
  // blame its peers for its own absence (the stall is detected and the probe voided).
  Cluster c(13);
  c.add_nodes(4);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  c.pause(2, sim::PauseMode::kDrop);
  c.run_for(1'200);
  c.resume(2);
  bool suspects_others = false;
  c.run_for(3'000, [&] {
    for (int b : c.all_but(2)) suspects_others |= c.state(2, b) != MemberState::kAlive;
  });
  EXPECT_FALSE(suspects_others);
}

TEST(Failure, CrashThenRestartWithFreshStateRejoins) {
  Cluster c(14);
  c.add_nodes(5);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  c.crash(3);
  auto others = c.all_but(3);
  ASSERT_GE(c.run_until([&] { return c.everyone_sees(3, MemberState::kDead, others); }, 15'000), 0);
  std::uint64_t dead_inc = c.view(0, 3)->incarnation;

  // A new process: incarnation starts from 0 and must outbid what the cluster remembers.
  c.restart(3);
  env::TimeMs took = c.run_until([&] { return c.all_alive(); }, 5'000);
  ASSERT_GE(took, 0);
  std::printf("restarted node alive everywhere after %lld ms\n", static_cast<long long>(took));
  EXPECT_GT(c.view(0, 3)->incarnation, dead_inc);
  EXPECT_GE(c.node(3).counters().refutations, 1u);
}

TEST(Failure, QuickRestartBeforeDetectionOutbidsTheRememberedIncarnation) {
  Cluster c(15);
  c.add_nodes(4);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  // Give node 2 a history: bump its incarnation a few times by making it refute.
  for (int k = 0; k < 3; ++k) {
    c.pause(2);
    c.run_until([&] { return c.state(0, 2) == MemberState::kSuspect; }, 5'000);
    c.resume(2);
    c.run_until([&] { return c.all_alive(); }, 5'000);
  }
  std::uint64_t remembered = c.view(0, 2)->incarnation;
  ASSERT_GT(remembered, 0u);
  c.restart(2);  // immediately, with incarnation 0
  Watch w{c, 2};
  auto outbid = [&] {
    for (int a : c.all())
      if (c.view(a, 2)->incarnation <= remembered) return false;
    return c.all_alive();
  };
  EXPECT_GE(c.run_until(outbid, 5'000, std::ref(w)), 0);
  EXPECT_FALSE(w.subject_dead);
}

TEST(Failure, LeaveIsLeftNeverDeadAndIsForgotten) {
  Cluster c(16, [](Config& cfg) { cfg.dead_forget_ms = 8'000; });
  c.add_nodes(5);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  Watch w{c, 1};
  c.node(1).leave();
  auto others = c.all_but(1);
  env::TimeMs took = c.run_until([&] { return c.everyone_sees(1, MemberState::kLeft, others); },
                                 3'000, std::ref(w));
  ASSERT_GE(took, 0);
  std::printf("leave known everywhere after %lld ms\n", static_cast<long long>(took));
  // The process exits a little later; nobody may then turn "left" into "dead".
  c.run_for(1'000, std::ref(w));
  c.crash(1);
  c.run_for(5'000, std::ref(w));
  EXPECT_FALSE(w.subject_dead);
  EXPECT_FALSE(w.other_dead);
  EXPECT_TRUE(c.everyone_sees(1, MemberState::kLeft, others));
  // Forgotten after dead_forget_ms.
  c.run_for(4'000);
  for (int a : others) EXPECT_FALSE(c.view(a, 1).has_value()) << a;
  EXPECT_TRUE(c.all_alive(others));
}

TEST(Failure, LeaveSurvivesLossOfMostAnnouncements) {
  Cluster c(17);
  c.add_nodes(6);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  c.net().set_default_profile(sim::LinkProfile{1, 4, 0.3, 0});
  Watch w{c, 0};
  c.node(0).leave();
  c.run_for(3'000, std::ref(w));
  c.crash(0);
  c.run_for(10'000, std::ref(w));
  EXPECT_TRUE(c.everyone_sees(0, MemberState::kLeft, c.all_but(0)));
  EXPECT_FALSE(w.subject_dead);
}

TEST(Failure, LeftNodeRestartsAndRejoins) {
  Cluster c(18);
  c.add_nodes(4);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  c.node(3).leave();
  ASSERT_GE(
      c.run_until([&] { return c.everyone_sees(3, MemberState::kLeft, c.all_but(3)); }, 3'000), 0);
  c.restart(3);
  EXPECT_GE(c.run_until([&] { return c.all_alive(); }, 5'000), 0);
}

struct LossCase {
  double loss;
  env::TimeMs suspicion_timeout_ms;
};

class Loss : public ::testing::TestWithParam<LossCase> {};

TEST_P(Loss, ConvergesWithoutFalseDeaths) {
  const auto [loss, suspicion_ms] = GetParam();
  for (std::uint64_t seed : {19, 20, 21}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster c(seed, [&](Config& cfg) { cfg.suspicion_timeout_ms = suspicion_ms; });
    c.net().set_default_profile(sim::LinkProfile{1, 10, loss, 0.02});
    c.add_nodes(16);
    env::TimeMs took = c.run_until([&] { return c.all_alive(); }, 20'000);
    ASSERT_GE(took, 0);
    std::printf("loss %.0f%%: converged after %lld ms\n", loss * 100, static_cast<long long>(took));
    bool false_death = false;
    int steps = 0;
    std::uint64_t suspicions = 0;
    c.run_for(60'000, [&] {
      if (++steps % 10 == 0) false_death = false_death || c.any_dead(c.all(), c.all());
    });
    for (int i = 0; i < c.size(); ++i) suspicions += c.node(i).counters().suspicions;
    std::printf("loss %.0f%%: %llu suspicions in 60 s, all refuted\n", loss * 100,
                static_cast<unsigned long long>(suspicions));
    EXPECT_FALSE(false_death);
    EXPECT_GE(c.run_until([&] { return c.all_alive(); }, 5'000), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Rates, Loss,
                         ::testing::Values(LossCase{0.10, kDefaultSuspicionTimeoutMs},
                                           LossCase{0.20, 5'000}),
                         [](const auto& p) {
                           return "Loss" + std::to_string(static_cast<int>(p.param.loss * 100));
                         });

TEST(Failure, PartitionHealsIntoOneCluster) {
  Cluster c(20);
  c.add_nodes(8);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  std::vector<env::Endpoint> left, right;
  for (int i = 0; i < 8; ++i) (i < 4 ? left : right).push_back(Cluster::addr(i));
  c.net().partition({left, right});
  ASSERT_GE(c.run_until(
                [&] {
                  return c.everyone_sees(0, MemberState::kDead, {4, 5, 6, 7});
                },
                20'000),
            0);
  EXPECT_TRUE(c.all_alive({0, 1, 2, 3}));
  EXPECT_TRUE(c.all_alive({4, 5, 6, 7}));
  c.net().heal();
  env::TimeMs took = c.run_until([&] { return c.all_alive(); }, 90'000);
  ASSERT_GE(took, 0) << "the two halves never merged";
  std::printf("partition healed after %lld ms\n", static_cast<long long>(took));
}

}  // namespace
}  // namespace osmo::gossip

namespace osmo::gossip {
namespace {

TEST(Failure, PartitionLongerThanForgettingHealsThroughTheSeeds) {
  // Each side forgets the other entirely (dead_forget_ms), so only the seed list (node 0, on the
  // left) still connects them.
  Cluster c(21, [](Config& cfg) { cfg.dead_forget_ms = 10'000; });
  c.add_nodes(8);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  std::vector<env::Endpoint> left, right;
  for (int i = 0; i < 8; ++i) (i < 4 ? left : right).push_back(Cluster::addr(i));
  c.net().partition({left, right});
  ASSERT_GE(
      c.run_until([&] { return !c.view(5, 0).has_value() && !c.view(0, 5).has_value(); }, 40'000),
      0)
      << "the sides never forgot each other";
  c.net().heal();
  env::TimeMs took = c.run_until([&] { return c.all_alive(); }, 60'000);
  ASSERT_GE(took, 0) << "the two forgotten halves never merged";
  std::printf("forgotten partition healed after %lld ms\n", static_cast<long long>(took));
}

}  // namespace
}  // namespace osmo::gossip
