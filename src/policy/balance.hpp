// SPDX-License-Identifier: GPL-2.0-or-later
// Load balancing by migration (MOSIX style), decided locally and periodically by each node: should
// one of our jobs move, which one, and where to. Pure: the daemon (and the simulator) hands in the
// local state, the gossiped view and the local jobs, and carries out the decision.
//
// A migration is only worth it when the job will run long enough afterwards to repay its cost, and
// it must not cause the reverse migration a moment later. The rules, all in balance.cpp:
//  - Balance: move a job only if the higher of the two loads after the move is lower than ours
//    before it by at least `min_gain` (scaled up for jobs that have already moved). Two equally
//    loaded nodes, or a 2-vs-1 split of single jobs, therefore never trade jobs back and forth.
//  - Stretch: the move must also make the two nodes' jobs run less stretched in all, by at least
//    `min_stretch_gain` (stretch_sum: under processor sharing a job on a node with R runnable
//    tasks, C CPUs and speed s takes max(1, R/C)/s of its CPU time). Between two nodes that are
//    both over their CPUs a move only trades who waits (4-CPU nodes at 6 and 4 jobs: a peak-load
//    gain of 0.25 but a stretch gain of 0.5), and the simulator showed such moves, paid for with
//    a freeze and CPU at both ends, making mean slowdown worse than no balancing; a target with
//    an idle CPU, or a faster one, gives a large stretch gain.
//  - Cost: the job's expected remaining run time (taken as its age so far, the heavy-tailed
//    lifetime result of Harchol-Balter and Downey) must exceed `min_benefit_ratio` times the
//    estimated migration time (fixed overhead + memory / bandwidth).
//  - Hysteresis in time: a job must be older than `min_job_age_ms` and have stayed here at least
//    `min_residence_ms`; after any migration out of this node, wait `cooldown_ms` so the gossiped
//    loads can reflect it before deciding again; a ledger counts what we sent but the target does
//    not show yet.
//  - Per job: a job that moved stays longer each time (residence doubling), a refused or failed
//    move backs off, a pinned job (--no-migrate) never moves, a job with a terminal only after
//    long CPU use, and a job with stdio traffic needs a larger gain to leave its home.
//  - The target has the last word (reservation.hpp): it re-checks the gain against its own load
//    plus what it has already promised, so two overloaded nodes cannot flood one idle node.
//  - Memory ushering: when our memory pressure exceeds `memory_high`, move the job that frees the
//    most memory to a node that stays below `memory_target_max` afterwards, even without a CPU
//    imbalance, provided the target is not CPU-overloaded afterwards (its load stays at most
//    max(1.0, our load now), give or take half the job's weight there): swapping costs more than
//    an uneven CPU share, an overload does not.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "env/clock.hpp"
#include "env/random.hpp"
#include "policy/load_estimator.hpp"
#include "policy/placement.hpp"
#include "policy/view.hpp"

namespace osmo::policy {

struct LocalState {
  std::string name;
  double runnable = 0;              // smoothed runnable tasks (LoadEstimator::smoothed())
  double cpus = 0;
  double speed = 1.0;
  std::uint64_t mem_free_mb = 0;
  std::uint64_t mem_total_mb = 0;
  std::optional<env::TimeMs> last_migration_out_ms;  // when we last sent a job away
  // Runnable tasks `runnable` still counts for jobs we sent away (DepartureLog::still_counted):
  // the estimator falls slowly (8 s), so without this a node that sent three of its four jobs
  // away still looks overloaded for seconds and sends the fourth too (seen on the testbed).
  double departed_runnable = 0;
};

// Jobs this node sent away, and how much of them its smoothed load still shows. After a job of
// share s leaves at t0, a LoadEstimator with fall time constant tau still counts
// s * exp(-(now - t0) / tau) of it (the exact decay of the estimator, load_estimator.hpp).
class DepartureLog {
 public:
  explicit DepartureLog(env::TimeMs fall_tau_ms = kLoadFallTauMs) : fall_tau_ms_(fall_tau_ms) {}
  void record(env::TimeMs now, double cpu_share);
  double still_counted(env::TimeMs now) const;
  void prune(env::TimeMs now);  // drops departures older than 6 time constants (< 0.25%)
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    env::TimeMs at_ms;
    double cpu;
  };
  env::TimeMs fall_tau_ms_;
  std::vector<Entry> entries_;
};

struct JobInfo {
  std::uint64_t id = 0;
  env::TimeMs age_ms = 0;           // since the job started (anywhere)
  env::TimeMs residence_ms = 0;     // since it arrived on this node
  double cpu_share = 1.0;           // runnable tasks it contributes (1 for a busy single thread)
  std::uint64_t mem_mb = 0;         // resident memory that would be transferred
  int migrations = 0;               // times it has moved already
  // CPU time the job has used (as far as this node knows: a restored process starts its counters
  // afresh). Negative: unknown, and the age stands in for it (expected_remaining_ms).
  env::TimeMs cpu_used_ms = -1;
  std::string home;                 // the node its `osmo run` runs on ("" = unknown)
  // Recent stdio traffic through the relay to its home, bytes per second: a job that talks a lot
  // with its home pays a network hop for every byte while it is away.
  double relay_bytes_per_s = 0;
  bool interactive = false;         // it has a terminal (moved only after long CPU use)
  bool pinned = false;              // `osmo run --no-migrate`: never moved automatically
  // When we last tried to move it and the target refused or the move failed (per-job back-off).
  std::optional<env::TimeMs> last_attempt_ms;
};

struct BalanceConfig {
  // Below this age a job is not considered: most processes are short-lived, and a young one is
  // expected to finish before a migration could pay off.
  env::TimeMs min_job_age_ms = 3000;
  // A job that just arrived stays at least this long (gossip needs a few seconds to show it).
  env::TimeMs min_residence_ms = 5000;
  // After sending a job away, do nothing for this long so loads catch up (about 4 load-gossip
  // rounds plus the estimator's rise time).
  env::TimeMs cooldown_ms = 3000;
  // Minimum reduction of the pair's peak normalised load. 0.2 keeps half a job's worth of noise on a
  // 2-CPU node from triggering moves; each earlier migration of the job raises it by 50%.
  double min_gain = 0.2;
  // Measured loads are noisy by about one runnable task (a migration's restore, a command run on
  // the node, the daemon's own work): on a node of 0.5 CPU that is 2.0 of normalised load, ten
  // times min_gain. Between equal nodes a move gains whole jobs (a job weighs share / capacity),
  // so the gain must also exceed this fraction of the job's weight on the larger of the two
  // nodes: every real move passes, moves made of noise do not (testbed: 3 nodes of 0.5 CPU, 4
  // jobs, 12 moves with min_gain alone, all but the first 2-3 of them noise).
  double min_gain_job_fraction = 0.5;
  // Minimum fall of stretch_sum over the pair (source and target) that a move must bring, in job
  // units: 4-CPU nodes at 6 and 2 jobs gain 1.75, at 5 and 3 1.25, at 7 and 4 1.0, at 6 and 4
  // only 0.5 (not moved); 0.5-CPU nodes at 4 and 0 gain 12.
  double min_stretch_gain = 1.0;
  double remigration_factor = 0.5;
  int max_migrations = 16;          // a job that moved this often stays where it is
  // Per-job cool-down: a job that has moved m >= 1 times stays min_residence_ms * 2^m on the node
  // it reached (10 s, 20 s, 40 s... capped at 16x): a job that keeps being moved is worth less to
  // move each time, and a wrong move (stale view) is not undone at once.
  int residence_doubling_max = 4;
  // After a refused or failed move of a job, it is not offered again for this long (the target
  // had its reasons; the view must catch up).
  env::TimeMs attempt_backoff_ms = 10'000;
  // A job with a terminal is moved automatically only once it has used this much CPU: an editor
  // or a mail reader answers keystrokes, and moving it only adds latency (MOSIX users complained).
  env::TimeMs interactive_min_cpu_ms = 60'000;
  // Stdio through the relay: a job away from home carries every byte over the network. Moving a
  // job away from its home (or further away) needs min_gain plus relay_gain_weight times
  // min(1, traffic / relay_full_bytes_per_s): 1 MB/s of stdio doubles the gain needed (0.2 more).
  double relay_full_bytes_per_s = 1e6;
  double relay_gain_weight = 0.2;
  // Migration cost model: fixed freeze/restore overhead plus memory over the transfer bandwidth
  // (loopback TCP does ~1.9 GB/s, a 1 GbE link ~110 MB/s: we take a conservative 100 MB/s).
  env::TimeMs migration_fixed_ms = 100;
  double migration_mb_per_s = 100.0;
  double min_benefit_ratio = 4.0;
  // Targets examined per decision, drawn at random weighted by capacity (bounded work on a view
  // of thousands, and no herding: see balance.cpp). 4 finds a clearly better node with high
  // probability when a quarter of the cluster is below average, and is all of a small cluster.
  int candidates_examined = 4;
  double memory_high = 0.9;
  double memory_target_max = 0.7;
  Staleness staleness;
};

// Gains closer than this to what is required count as equal (not enough).
inline constexpr double kGainEpsilon = 1e-9;

// How stretched the jobs of a node run in all under processor sharing: R tasks on `cpus` CPUs of
// `speed` each take max(1, R / cpus) / speed of their CPU time, so the node adds up to
// R * max(1, R / cpus) / speed. Convex in R: spreading lowers the sum, most where a CPU is idle.
double stretch_sum(double runnable, double cpus, double speed);

enum class MoveReason : std::uint8_t { kLoad, kMemory, kDrain };
const char* to_string(MoveReason r);

struct Move {
  std::uint64_t job_id = 0;
  std::string target;
  MoveReason reason = MoveReason::kLoad;
  double gain = 0;                  // reduction of the peak normalised load (load moves)
  double source_load_after = 0;
  double target_load_after = 0;
  env::TimeMs cost_ms = 0;          // estimated migration time
  env::TimeMs target_load_age_ms = 0;  // age of the target's figure the move rests on
  // What the target checks before it accepts (policy/reservation.hpp): our load before and after,
  // and the gain the move had to exceed.
  double source_load_before = 0;
  double required_gain = 0;
  double cpu_share = 0;
  std::uint64_t mem_mb = 0;
};

// Estimated time to migrate a job (freeze to resume) under `config`'s cost model.
env::TimeMs migration_cost_ms(const JobInfo& job, const BalanceConfig& config);

// Expected remaining run time: as much CPU time again as it has used (Harchol-Balter & Downey:
// lifetimes are heavy-tailed, a process that has used T is expected to use about T more), or the
// age when the CPU use is unknown. A job that mostly sleeps has little left to gain from a move.
env::TimeMs expected_remaining_ms(const JobInfo& job);

// Whether the balancer may consider `job` at all at `now`, and if not why (for logs and tests):
// nullptr when it may.
const char* why_not_movable(const JobInfo& job, env::TimeMs now, const BalanceConfig& config);

// The gain a move of `job` from a node of capacity `source_cap` to `target` (capacity
// `target_cap`) must exceed: the larger of min_gain and min_gain_job_fraction of the job's weight,
// raised by earlier migrations, plus the job's relay traffic when the target is not its home.
double required_gain(const JobInfo& job, double source_cap, const std::string& target,
                     double target_cap, const BalanceConfig& config);

// Decides at most one migration. `view` may contain the local node (it is skipped). `ledger`
// counts jobs we have sent (placed or migrated) that targets may not show yet; after carrying out
// a Move, the caller records it there and sets last_migration_out_ms. `random` draws the examined
// targets when there are more than candidates_examined (and orders equal ages when more than the
// staleness pool are usable; otherwise it is not used); ties are broken by job id and node name,
// so the result is deterministic given random's state.
std::optional<Move> decide_balance(const LocalState& local, std::span<const Candidate> view,
                                   std::span<const JobInfo> jobs, const PlacementLedger& ledger,
                                   env::TimeMs now, env::Random& random,
                                   const BalanceConfig& config = {});

}  // namespace osmo::policy
