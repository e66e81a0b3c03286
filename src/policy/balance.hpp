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
//  - Cost: the job's expected remaining run time (taken as its age so far, the heavy-tailed
//    lifetime result of Harchol-Balter and Downey) must exceed `min_benefit_ratio` times the
//    estimated migration time (fixed overhead + memory / bandwidth).
//  - Hysteresis in time: a job must be older than `min_job_age_ms` and have stayed here at least
//    `min_residence_ms`; after any migration out of this node, wait `cooldown_ms` so the gossiped
//    loads can reflect it before deciding again; a ledger counts what we sent but the target does
//    not show yet.
//  - Memory ushering: when our memory pressure exceeds `memory_high`, move the job that frees the
//    most memory to a node that stays below `memory_target_max` afterwards, even without a CPU
//    imbalance, provided the target is not CPU-overloaded afterwards (its load stays at most
//    max(1.0, our load now)): swapping costs more than an uneven CPU share, an overload does not.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "env/clock.hpp"
#include "env/random.hpp"
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
};

struct JobInfo {
  std::uint64_t id = 0;
  env::TimeMs age_ms = 0;           // since the job started (anywhere)
  env::TimeMs residence_ms = 0;     // since it arrived on this node
  double cpu_share = 1.0;           // runnable tasks it contributes (1 for a busy single thread)
  std::uint64_t mem_mb = 0;         // resident memory that would be transferred
  int migrations = 0;               // times it has moved already
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
  double remigration_factor = 0.5;
  int max_migrations = 16;          // a job that moved this often stays where it is
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

enum class MoveReason : std::uint8_t { kLoad, kMemory };
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
};

// Estimated time to migrate a job (freeze to resume) under `config`'s cost model.
env::TimeMs migration_cost_ms(const JobInfo& job, const BalanceConfig& config);

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
