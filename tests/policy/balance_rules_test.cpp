// SPDX-License-Identifier: GPL-2.0-or-later
// The rules the balancing loop added on top of decide_balance: the target's reservation (two
// overloaded nodes never flood one idle node), the per-job cool-down and back-off, expected
// remaining time from CPU use against the cost of moving the memory, relay traffic, interactive
// and pinned jobs, capacity-normalised loads, draining nodes, and where a drain sends its guests.
// All with injected time and seeded randomness: nothing sleeps.
#include <vector>

#include <gtest/gtest.h>

#include "policy/balance.hpp"
#include "policy/drain.hpp"
#include "policy/load_estimator.hpp"
#include "policy/reservation.hpp"

namespace osmo::policy {
namespace {

LocalState local(double runnable, double cpus = 1, double speed = 1.0) {
  LocalState s;
  s.name = "me";
  s.runnable = runnable;
  s.cpus = cpus;
  s.speed = speed;
  s.mem_free_mb = 8000;
  s.mem_total_mb = 16000;
  return s;
}

Candidate peer(std::string name, double load, double cpus = 1, double speed = 1.0) {
  Candidate c;
  c.name = std::move(name);
  c.alive = true;
  c.load = load;
  c.cpus = cpus;
  c.speed = speed;
  c.load_age_ms = 100;
  c.mem_free_mb = 8000;
  c.mem_total_mb = 16000;
  return c;
}

JobInfo job(std::uint64_t id, env::TimeMs age_ms = 60'000, std::uint64_t mem_mb = 100) {
  JobInfo j;
  j.id = id;
  j.age_ms = age_ms;
  j.residence_ms = age_ms;
  j.mem_mb = mem_mb;
  j.home = "me";
  return j;
}

std::vector<JobInfo> jobs(int n) {
  std::vector<JobInfo> v;
  for (int i = 0; i < n; ++i) v.push_back(job(static_cast<std::uint64_t>(i + 1)));
  return v;
}

MoveOffer offer_of(const Move& m, std::string job, std::string source) {
  MoveOffer o;
  o.job = std::move(job);
  o.source = std::move(source);
  o.reason = m.reason;
  o.cpu_share = m.cpu_share;
  o.mem_mb = m.mem_mb;
  o.source_load_before = m.source_load_before;
  o.source_load_after = m.source_load_after;
  o.required_gain = m.required_gain;
  o.cost_ms = m.cost_ms;
  return o;
}

const PlacementLedger kNoLedger;
constexpr env::TimeMs kNow = 1'000'000;

TEST(BalanceRules, TheTargetReservesAndRefusesOnceItsPromisesMakeTheMoveWorthless) {
  // Three overloaded single-CPU nodes decide on the same view: "idle" at load 0. Each source's
  // own rule says yes; the target takes the first two (0+1, then 0+1+1 = 2 against sources at 3)
  // and refuses the third (a source at 2 would leave 1, the target would hold 3).
  env::SeededRandom rng(1);
  const std::vector<Candidate> view = {peer("idle", 0.0)};
  Candidate idle = peer("idle", 0.0);
  idle.is_self = true;
  ReservationBook book;
  int accepted = 0;
  for (double src_runnable : {3.0, 3.0, 2.0}) {
    auto m = decide_balance(local(src_runnable), view, jobs(static_cast<int>(src_runnable)), kNoLedger,
                            kNow, rng);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->target, "idle");
    const auto o = offer_of(*m, "job" + std::to_string(accepted + 1), "src");
    const Verdict v = accept_move(idle, o, book, kNow);
    if (v.accepted) {
      book.reserve(o, kNow);
      ++accepted;
    } else {
      EXPECT_NE(v.why.find("not worth it"), std::string::npos) << v.why;
    }
  }
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(book.pending(kNow).jobs, 2);
}

TEST(BalanceRules, AReservationLastsUntilTheJobShowsOrItExpires) {
  ReservationBook book(/*settle_ms=*/1500, /*hold_base_ms=*/10'000);
  MoveOffer o;
  o.job = "a";
  o.cpu_share = 1;
  o.mem_mb = 500;
  o.cost_ms = 1000;
  book.reserve(o, 0);
  EXPECT_EQ(book.pending(11'999).jobs, 1);  // 10 s + 2 * cost
  EXPECT_EQ(book.pending(12'000).jobs, 0);
  book.reserve(o, 20'000);
  book.arrived("a", 21'000);  // counts 1.5 s more, then the load estimate carries it
  EXPECT_EQ(book.pending(22'499).mem_mb, 500u);
  EXPECT_EQ(book.pending(22'500).jobs, 0);
  book.reserve(o, 30'000);
  book.cancel("a");
  EXPECT_EQ(book.pending(30'000).jobs, 0);
}

TEST(BalanceRules, TheTargetRefusesAJobWhoseMemoryItCannotHold) {
  Candidate self = peer("t", 0.0);
  self.mem_free_mb = 1000;
  ReservationBook book;
  MoveOffer o;
  o.job = "big";
  o.mem_mb = 800;
  o.source_load_before = 3;
  o.source_load_after = 2;
  o.required_gain = 0.2;
  EXPECT_TRUE(accept_move(self, o, book, kNow).accepted);
  book.reserve(o, kNow);
  o.job = "second";
  const Verdict v = accept_move(self, o, book, kNow);  // 1000 free, 800 promised
  EXPECT_FALSE(v.accepted);
  EXPECT_NE(v.why.find("cannot hold"), std::string::npos) << v.why;
}

TEST(BalanceRules, DrainingOrNonBalancingTargetsRefuseAndAreNeverChosen) {
  env::SeededRandom rng(2);
  Candidate d = peer("draining", 0.0);
  d.draining = true;
  Candidate nb = peer("nobalance", 0.0);
  nb.takes_auto_migrations = false;
  const std::vector<Candidate> view = {d, nb};
  EXPECT_FALSE(decide_balance(local(4), view, jobs(4), kNoLedger, kNow, rng));
  MoveOffer o;
  o.job = "x";
  o.source_load_before = 4;
  o.source_load_after = 3;
  ReservationBook book;
  EXPECT_FALSE(accept_move(d, o, book, kNow).accepted);
  EXPECT_FALSE(accept_move(nb, o, book, kNow).accepted);
  o.reason = MoveReason::kDrain;  // a drain's moves go to a node without automatic balancing
  EXPECT_TRUE(accept_move(nb, o, book, kNow).accepted);
  // Placement skips a draining node, even when it is the idle one.
  PlacementLedger ledger;
  Candidate self = peer("me", 3.0);
  self.is_self = true;
  const std::vector<Candidate> pview = {self, d};
  auto p = choose_node(PlacementRequest{}, pview, ledger, kNow, rng);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->node, "me");
}

TEST(BalanceRules, PerJobCoolDownDoublesWithEveryMove) {
  env::SeededRandom rng(3);
  const std::vector<Candidate> view = {peer("idle", 0.0, 4)};
  auto v = jobs(4);
  for (auto& j : v) {
    j.migrations = 2;
    j.residence_ms = 19'000;  // 5 s * 2^2 = 20 s needed
  }
  EXPECT_FALSE(decide_balance(local(4), view, v, kNoLedger, kNow, rng));
  EXPECT_STREQ(why_not_movable(v[0], kNow, BalanceConfig{}), "arrived recently");
  for (auto& j : v) j.residence_ms = 20'000;
  EXPECT_TRUE(decide_balance(local(4), view, v, kNoLedger, kNow, rng));
}

TEST(BalanceRules, ARefusedJobBacksOff) {
  env::SeededRandom rng(4);
  const std::vector<Candidate> view = {peer("idle", 0.0)};
  auto v = jobs(1);
  v[0].last_attempt_ms = kNow - 9'999;
  EXPECT_FALSE(decide_balance(local(3), view, v, kNoLedger, kNow, rng));
  v[0].last_attempt_ms = kNow - 10'000;
  EXPECT_TRUE(decide_balance(local(3), view, v, kNoLedger, kNow, rng));
}

TEST(BalanceRules, RemainingTimeFromCpuUseMustExceedTheCostOfMovingTheMemory) {
  env::SeededRandom rng(5);
  const std::vector<Candidate> view = {peer("idle", 0.0)};
  // 1000 MB over 100 MB/s + 100 ms = 10.1 s; 4x = 40.4 s of expected remaining CPU needed.
  auto v = std::vector<JobInfo>{job(1, 600'000, 1000)};
  v[0].cpu_used_ms = 40'000;  // old, but it used little CPU: not worth the copy
  EXPECT_EQ(expected_remaining_ms(v[0]), 40'000);
  EXPECT_FALSE(decide_balance(local(3), view, v, kNoLedger, kNow, rng));
  v[0].cpu_used_ms = 40'400;
  EXPECT_TRUE(decide_balance(local(3), view, v, kNoLedger, kNow, rng));
  // Unknown CPU use: the age stands in for it.
  v[0].cpu_used_ms = -1;
  v[0].age_ms = v[0].residence_ms = 40'399;
  EXPECT_FALSE(decide_balance(local(3), view, v, kNoLedger, kNow, rng));
}

TEST(BalanceRules, CapacityNotProcessCountsDecides) {
  env::SeededRandom rng(6);
  // Us: 4 jobs on 4 CPUs (load 1.0). The peer: 1 job on half a CPU of speed 1 (load 2.0 as
  // gossiped). By counts we have 4x more; by capacity we are the lighter one: no move.
  EXPECT_FALSE(decide_balance(local(4, 4), std::vector<Candidate>{peer("small", 2.0, 0.5)}, jobs(4),
                              kNoLedger, kNow, rng));
  // Us: 2 jobs on 1 CPU of speed 1 (2.0); the peer: 3 jobs on 2 CPUs of speed 2 (0.75). Move.
  auto m = decide_balance(local(2, 1), std::vector<Candidate>{peer("fast", 0.75, 2, 2.0)}, jobs(2),
                          kNoLedger, kNow, rng);
  ASSERT_TRUE(m);
  EXPECT_NEAR(m->target_load_after, 1.0, 1e-9);  // (3 + 1) / 4
  // A slow peer (speed 0.5) with the same counts is worse: 3 jobs on 2 * 0.5 = 3.0: no move.
  EXPECT_FALSE(decide_balance(local(2, 1), std::vector<Candidate>{peer("slow", 3.0, 2, 0.5)}, jobs(2),
                              kNoLedger, kNow, rng));
}

TEST(BalanceRules, HysteresisKeepsASmallImbalance) {
  env::SeededRandom rng(7);
  // 3 jobs on 2 CPUs (1.5) vs 2 on 2 (1.0): the peak would go 1.5 -> 1.5: nothing to gain.
  EXPECT_FALSE(decide_balance(local(3, 2), std::vector<Candidate>{peer("p", 1.0, 2)}, jobs(3),
                              kNoLedger, kNow, rng));
  // 5 on 4 CPUs (1.25) vs 3 on 4 (0.75): peak 1.25 -> 1.0, gain 0.25 > 0.2: one move.
  EXPECT_TRUE(decide_balance(local(5, 4), std::vector<Candidate>{peer("p", 0.75, 4)}, jobs(5),
                             kNoLedger, kNow, rng));
  // 9 on 8 (1.125) vs 7 on 8 (0.875): gain 0.125 < 0.2: stays (within the hysteresis band).
  EXPECT_FALSE(decide_balance(local(9, 8), std::vector<Candidate>{peer("p", 0.875, 8)}, jobs(9),
                              kNoLedger, kNow, rng));
}

TEST(BalanceRules, RelayTrafficMakesAJobWorthLessAwayFromHome) {
  env::SeededRandom rng(8);
  BalanceConfig cfg;
  JobInfo chatty = job(1);
  chatty.relay_bytes_per_s = 2e6;  // capped at relay_full: +0.2
  // Between 4-CPU nodes a job weighs 0.25, half of it is below min_gain: 0.2, +0.2 for the relay.
  EXPECT_NEAR(required_gain(chatty, 4, "elsewhere", 4, cfg), 0.4, 1e-9);
  EXPECT_NEAR(required_gain(chatty, 4, "me", 4, cfg), 0.2, 1e-9);  // going home costs nothing extra
  // Between single-CPU nodes a job weighs 1: half a job (0.5) is needed, +0.2 for the relay.
  EXPECT_NEAR(required_gain(chatty, 1, "elsewhere", 1, cfg), 0.7, 1e-9);
  // 2 single-CPU jobs here vs a peer at 0.4: gain 2 - max(1, 1.4) = 0.6: a quiet job moves (0.6 >
  // 0.5), a chatty one stays (0.6 < 0.7).
  JobInfo quiet = job(2);
  EXPECT_TRUE(decide_balance(local(2), std::vector<Candidate>{peer("p", 0.4)},
                             std::vector<JobInfo>{quiet}, kNoLedger, kNow, rng, cfg));
  EXPECT_FALSE(decide_balance(local(2), std::vector<Candidate>{peer("p", 0.4)},
                              std::vector<JobInfo>{chatty}, kNoLedger, kNow, rng, cfg));
}

TEST(BalanceRules, InteractiveJobsMoveOnlyAfterLongCpuUseAndPinnedNever) {
  env::SeededRandom rng(9);
  const std::vector<Candidate> view = {peer("idle", 0.0)};
  JobInfo editor = job(1, 3'600'000);
  editor.interactive = true;
  editor.cpu_used_ms = 2'000;
  EXPECT_FALSE(decide_balance(local(3), view, std::vector<JobInfo>{editor}, kNoLedger, kNow, rng));
  editor.cpu_used_ms = 60'000;  // a terminal job that computes for a minute moves after all
  EXPECT_TRUE(decide_balance(local(3), view, std::vector<JobInfo>{editor}, kNoLedger, kNow, rng));
  JobInfo pinned = job(2);
  pinned.pinned = true;
  EXPECT_FALSE(decide_balance(local(3), view, std::vector<JobInfo>{pinned}, kNoLedger, kNow, rng));
  EXPECT_STREQ(why_not_movable(pinned, kNow, BalanceConfig{}), "pinned (--no-migrate)");
}

TEST(BalanceRules, DrainMovesGuestsToThePlacementChoiceOrHome) {
  env::SeededRandom rng(10);
  LocalState me = local(3);
  std::vector<JobInfo> v = jobs(3);
  v[0].home = "me";  // started here: stays
  v[1].home = "h";
  v[1].mem_mb = 50;  // the cheapest guest goes first
  v[2].home = "h";
  Candidate self = peer("me", 3.0);
  self.is_self = true;
  Candidate h = peer("h", 0.5);
  Candidate other = peer("o", 0.0);
  PlacementLedger ledger;
  auto m = decide_drain(me, std::vector<Candidate>{self, h, other}, v, ledger, kNow, rng);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->job_id, 2u);
  EXPECT_EQ(m->reason, MoveReason::kDrain);
  // Nobody placement trusts has the memory: home takes it (its figure is too old for placement).
  h.load_age_ms = 60'000;
  other.mem_free_mb = 10;
  m = decide_drain(me, std::vector<Candidate>{self, h, other}, v, ledger, kNow, rng);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->target, "h");
  // Not even home can hold it: it stays (never sent where its memory does not fit).
  h.mem_free_mb = 10;
  EXPECT_FALSE(decide_drain(me, std::vector<Candidate>{self, h, other}, v, ledger, kNow, rng));
  h.mem_free_mb = 8000;
  // Pinned guests and jobs at home stay; a failed one waits for its back-off.
  v[1].pinned = true;
  v[2].last_attempt_ms = kNow - 1000;
  EXPECT_FALSE(decide_drain(me, std::vector<Candidate>{self, h, other}, v, ledger, kNow, rng));
}

TEST(BalanceRules, StretchSumIsTheProcessorSharingStretchOfANode) {
  EXPECT_DOUBLE_EQ(stretch_sum(0, 4, 1.0), 0);
  EXPECT_DOUBLE_EQ(stretch_sum(3, 4, 1.0), 3);       // a CPU each: not stretched
  EXPECT_DOUBLE_EQ(stretch_sum(6, 4, 1.0), 9);       // 6 tasks at 1.5 each
  EXPECT_DOUBLE_EQ(stretch_sum(2, 4, 0.5), 4);       // half-speed CPUs: twice as long
  EXPECT_DOUBLE_EQ(stretch_sum(4, 0.5, 1.0), 32);    // 4 tasks on half a CPU: 8 each
}

TEST(BalanceRules, TwoNodesOverTheirCpusDoNotTradeWhoWaits) {
  // 4-CPU nodes at 6 and 4 runnable tasks: the peak load falls from 1.5 to 1.25 (more than
  // min_gain), but both stay over their CPUs; the stretch sum falls by only 0.5: no move. At 6
  // and 2 the target has idle CPUs (gain 1.75): the job moves there.
  env::SeededRandom rng(3);
  BalanceConfig cfg;
  std::vector<Candidate> full = {peer("full", 1.0, 4)};
  EXPECT_FALSE(decide_balance(local(6, 4), full, jobs(6), kNoLedger, kNow, rng, cfg));
  std::vector<Candidate> idle = {peer("idle", 0.5, 4)};
  auto m = decide_balance(local(6, 4), idle, jobs(6), kNoLedger, kNow, rng, cfg);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->target, "idle");
  // Without the stretch rule the first pair would trade (what the rule prevents).
  cfg.min_stretch_gain = 0;
  EXPECT_TRUE(decide_balance(local(6, 4), full, jobs(6), kNoLedger, kNow, rng, cfg));
}

}  // namespace
}  // namespace osmo::policy

namespace osmo::policy {
namespace {

TEST(BalanceRules, JobsSentAwayNoLongerCountAsOurLoad) {
  // The estimator falls with tau 8 s: 1 s after sending 3 of 4 jobs away it still shows ~3.6.
  // The departures log takes off exactly what the estimator still counts.
  LoadEstimator est;
  est.add_sample(0, 4);
  DepartureLog gone;
  for (env::TimeMs t : {0, 0, 0}) gone.record(t, 1.0);
  est.add_sample(1000, 1);
  EXPECT_GT(est.smoothed(), 3.5);
  EXPECT_NEAR(est.smoothed() - gone.still_counted(1000), 1.0, 1e-9);
  // So the node with one job left does not send it after the others (peer at 2 jobs per CPU).
  env::SeededRandom rng(11);
  LocalState me;
  me.name = "me";
  me.runnable = est.smoothed();
  me.cpus = 1;
  me.mem_free_mb = me.mem_total_mb = 8000;
  Candidate p;
  p.name = "p";
  p.alive = true;
  p.load = 1.0;
  p.cpus = 1;
  p.mem_free_mb = p.mem_total_mb = 8000;
  JobInfo j;
  j.id = 1;
  j.age_ms = j.residence_ms = 60'000;
  EXPECT_TRUE(decide_balance(me, std::vector<Candidate>{p}, std::vector<JobInfo>{j}, PlacementLedger{}, 1000, rng));
  me.departed_runnable = gone.still_counted(1000);
  EXPECT_FALSE(decide_balance(me, std::vector<Candidate>{p}, std::vector<JobInfo>{j}, PlacementLedger{}, 1000, rng));
  gone.prune(49'000);
  EXPECT_EQ(gone.size(), 0u);
}

}  // namespace
}  // namespace osmo::policy

namespace osmo::policy {
namespace {

TEST(BalanceRules, MemoryUsheringMovesALoneJobFromAFullSmallNodeToAnIdleOne) {
  // Half-CPU nodes: our one job makes 1.9 (measured), an idle target would show 2.0 with it. The
  // memory move must still happen (the testbed's case): the target is as loaded as the job alone
  // makes any node.
  env::SeededRandom rng(12);
  LocalState me;
  me.name = "me";
  me.runnable = 0.95;
  me.cpus = 0.5;
  me.mem_total_mb = 256;
  me.mem_free_mb = 16;  // 94% used
  Candidate t;
  t.name = "t";
  t.alive = true;
  t.load = 0;
  t.cpus = 0.5;
  t.mem_total_mb = 24000;
  t.mem_free_mb = 20000;
  JobInfo j;
  j.id = 1;
  j.age_ms = j.residence_ms = 60'000;
  j.cpu_used_ms = 20'000;
  j.mem_mb = 212;
  auto m = decide_balance(me, std::vector<Candidate>{t}, std::vector<JobInfo>{j}, PlacementLedger{}, kNow, rng);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->reason, MoveReason::kMemory);
  ReservationBook book;
  Candidate self = t;
  self.is_self = true;
  MoveOffer o;
  o.job = "1";
  o.reason = MoveReason::kMemory;
  o.cpu_share = 1;
  o.mem_mb = 212;
  o.source_load_before = m->source_load_before;
  o.source_load_after = m->source_load_after;
  EXPECT_TRUE(accept_move(self, o, book, kNow).accepted);
  // A target that already runs a job would be at 4.0: refused on both sides.
  t.load = 2.0;
  EXPECT_FALSE(decide_balance(me, std::vector<Candidate>{t}, std::vector<JobInfo>{j}, PlacementLedger{}, kNow, rng));
  self.load = 2.0;
  EXPECT_FALSE(accept_move(self, o, book, kNow).accepted);
}

}  // namespace
}  // namespace osmo::policy
