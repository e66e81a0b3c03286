// SPDX-License-Identifier: GPL-2.0-or-later
// The simulated workload: a Poisson stream of jobs submitted at random nodes, placed by the real
// policy code (or by a baseline, for comparison), each running for a random time; every node's
// runnable count is smoothed by the real LoadEstimator and gossiped through set_local_load(), and
// optionally the real balancer migrates jobs. It measures how evenly the load is spread.
//
// Sampling, placement and balancing go through src/cluster_view, the very calls the daemon
// makes, so the simulator measures the daemon's rules (including what happens to a job that no
// node can take: it is refused, not started at home).
//
// Balancing runs the daemon's whole decision: cluster_view::decide_move on the source (with its
// departures log), then cluster_view::judge_offer on the target against its reservations, as the
// peer request `balance.reserve` does (src/balance/balance_service.cpp).
//
// Two models. The default (kept for the membership-era figures and tests): a job's run time does
// not depend on how loaded its node is, a migration is instantaneous, every job has the same
// memory. With `processor_sharing` (osmo-sim --ps) a job has a CPU demand instead of a run time
// and progresses at speed * min(1, cpus / runnable) of its node (processor sharing), so it stretches
// with its node's load; a migration freezes it for 100 ms + memory / link rate and costs one
// runnable task's worth of CPU at both ends while it copies; the job's slowdown (response time /
// demand on a free 1.0-speed CPU) is measured. Demands can follow a bounded Pareto law (alpha ~1,
// Harchol-Balter and Downey's measured lifetimes) and memory a bounded Pareto law of its own.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "env/random.hpp"
#include "gossip/node.hpp"
#include "policy/balance.hpp"
#include "policy/load_estimator.hpp"
#include "policy/placement.hpp"
#include "policy/reservation.hpp"
#include "sim/cluster.hpp"
#include "sim/metrics.hpp"

namespace osmo::sim {

enum class PlacementMode : std::uint8_t {
  kPolicy,  // cluster_view::place_job on the home node's gossiped view (what osmo run does)
  kRandom,  // a uniformly random alive member of the home node's view (baseline)
  kHome,    // always the submitting node (no cluster at all: baseline)
  kOracle,  // the least-loaded up node by true, instantaneous load (unattainable reference)
  // Idealised pull at decision time: ask d capacity-weighted random alive members of the home
  // node's view for their load (as a round trip would return it: the figure each last gossiped,
  // aged by the time since plus one round trip, never lost) and place with place_job on those
  // and home. A reference for what a pull could buy; not what the daemon does.
  kPull,
  // Each submitting node hands jobs to the alive members of its view in turn (baseline).
  kRoundRobin,
  // An omniscient central FIFO queue (reference, --ps only): a job starts on the fastest node
  // with a free CPU (running jobs < cpus), or waits in one cluster-wide queue until a CPU frees.
  kCentral,
};
const char* to_string(PlacementMode m);
bool parse_placement_mode(std::string_view text, PlacementMode* out);

struct WorkloadConfig {
  double utilization = 0.7;              // offered load / total capacity
  env::TimeMs mean_runtime_ms = 20'000;  // exponential run times
  env::TimeMs start_ms = 0;              // first arrival not before
  env::TimeMs end_ms = 60'000;           // no arrivals after
  env::TimeMs warmup_ms = 20'000;        // measurements start here
  env::TimeMs sample_ms = 250;           // load sampling (and gossip of it) on every node
  env::TimeMs measure_ms = 1000;         // load spread measurement period
  PlacementMode mode = PlacementMode::kPolicy;
  policy::PlacementConfig placement;
  bool balance = false;                  // run policy::decide_balance on every node
  env::TimeMs balance_ms = 1000;
  policy::BalanceConfig balancer;
  // The target's reservation check (judge_offer). Off only to measure what it prevents.
  bool target_reserves = true;
  std::uint64_t job_mem_mb = 256;
  // Jobs started at install() on a given node, pinned there for their first placement only (as
  // `osmo run --node`): a convergence test starts them all on one node and lets balancing spread
  // them.
  struct InitialJob {
    std::uint32_t node = 0;
    env::TimeMs runtime_ms = 0;
  };
  std::vector<InitialJob> initial_jobs;

  // The processor-sharing model (see the top of this file).
  bool processor_sharing = false;
  enum class Demand : std::uint8_t { kExponential, kPareto };
  Demand demand = Demand::kExponential;  // law of CPU demands (mean: mean_runtime_ms)
  double pareto_alpha = 1.0;
  double pareto_ratio = 100;             // largest / smallest demand of the bounded Pareto law
  bool heavy_memory = false;             // memory per job: bounded Pareto, alpha 1.2, 32 MB..8 GB
  double link_mb_per_s = 100;            // a migration copies the job's memory at this rate
  env::TimeMs migration_setup_ms = 100;  // plus this much (freeze, connection, restore)
  env::TimeMs drain_ms = 120'000;        // --ps: after the last arrival, wait this long for jobs
};

class Workload {
 public:
  Workload(Cluster& cluster, WorkloadConfig config, std::uint64_t seed);
  // Registers with the cluster and schedules sampling, arrivals and measurements.
  void install();
  // Figures measured so far (keys prefixed with `prefix`).
  Metrics results(const std::string& prefix = "") const;
  double total_capacity() const { return total_cap_; }
  // Jobs running on each node now (by node index).
  std::vector<std::size_t> jobs_per_node() const;
  // --ps: jobs submitted in the measured period that have not ended yet.
  std::uint64_t unfinished_measured() const { return measured_jobs_ - measured_done_; }

 private:
  struct Job {
    std::uint32_t node = 0;
    std::uint64_t node_generation = 0;
    env::TimeMs start_ms = 0;
    env::TimeMs arrived_ms = 0;   // on its current node
    int migrations = 0;
    bool done = false;
    std::uint32_t home = 0;
    std::optional<std::uint32_t> previous_node;     // where it ran before its last move
    std::optional<env::TimeMs> last_attempt_ms;     // its last move the target refused
    // Processor sharing: CPU demand (ms on a free 1.0-speed CPU), what is left of it, memory,
    // when it was submitted, whether it counts for the slowdown, and whether it is copying.
    double work_ms = 0;
    double remaining_ms = 0;
    std::uint64_t mem_mb = 0;
    env::TimeMs submit_ms = 0;
    bool measured = false;
    bool in_flight = false;
    double remaining_at_arrival_ms = 0;  // its CPU use on this node is what it did since
  };
  struct NodeState {
    std::uint64_t generation = 0;
    std::vector<std::uint64_t> jobs;  // ids of jobs running here
    policy::LoadEstimator estimator;
    policy::PlacementLedger ledger;
    std::optional<env::TimeMs> last_migration_out_ms;
    // The target's side of a move, as the daemon keeps it (balance_service.cpp): what it promised
    // to take, and what it sent away that its own estimate still counts.
    policy::ReservationBook book;
    policy::DepartureLog departures;
    gossip::LoadInfo published;  // what the node last handed to set_local_load (pull baseline)
    env::TimeMs published_ms = 0;
    // Processor sharing: when the jobs' remaining demands were last brought up to date, the
    // epoch of the node's pending finish event (older ones are stale), copies under way (each
    // costs one runnable task), memory of the jobs here, round-robin cursor.
    env::TimeMs updated_ms = 0;
    std::uint64_t epoch = 0;
    int copies = 0;
    std::uint64_t mem_used_mb = 0;
    std::uint64_t rr_next = 0;
  };

  void on_event(const Event& e);
  void sync_node(std::uint32_t i);  // forget jobs of a node that was killed or restarted
  void sample_all();
  void arrival();
  void place_and_start(std::uint32_t home, env::TimeMs runtime_ms, std::uint64_t mem_mb);
  void start_job(std::uint32_t node, env::TimeMs runtime_ms, std::uint32_t home,
                 std::uint64_t mem_mb, env::TimeMs submit_ms);
  void finish(std::uint64_t job_id);
  void balance_all();
  void measure();
  void schedule_next_arrival();
  // Processor sharing.
  double rate_per_job(std::uint32_t node) const;  // demand ms done per ms by each running job
  void advance(std::uint32_t node);               // bring remaining demands up to now
  void reschedule(std::uint32_t node);            // the node's next finish event
  void node_finish(std::uint32_t node, std::uint64_t epoch);
  void job_done(std::uint64_t job_id);            // slowdown bookkeeping of an ended job
  void arrive(std::uint64_t job_id);              // a copied job lands on its target
  std::uint64_t node_mem_used(std::uint32_t node) const;
  double runnable(std::uint32_t node) const;
  bool central_start(std::uint64_t job_id);       // kCentral: start it if a CPU is free
  void central_dispatch();                        // kCentral: start queued jobs on free CPUs
  std::uint64_t draw_mem_mb();
  env::TimeMs draw_runtime_ms();

  Cluster& cluster_;
  WorkloadConfig config_;
  // Two streams: the arrivals (when, where, how long) must be identical whatever the placement
  // mode, so that modes are compared on the very same jobs; decisions draw from the other.
  env::SeededRandom arrivals_;
  env::SeededRandom random_;
  std::vector<NodeState> nodes_;
  std::vector<Job> jobs_;
  double total_cap_ = 0;
  double arrival_rate_per_ms_ = 0;
  double pareto_min_ms_ = 0;  // smallest demand of the bounded Pareto law

  // Measurements.
  std::uint64_t submitted_ = 0, placed_home_ = 0, placement_failures_ = 0, start_misses_ = 0;
  std::uint64_t finished_ = 0, lost_ = 0, migrations_ = 0, memory_migrations_ = 0;
  // Moves the target refused (reservation), and moves that sent a job straight back to the node
  // it had just left (ping-pong); the most moves any job made; when the last move happened.
  std::uint64_t balance_refusals_ = 0, returns_ = 0;
  int max_job_migrations_ = 0;
  env::TimeMs last_migration_ms_ = -1;
  std::uint64_t measurements_ = 0;
  // How stale the gossiped view is when a job is placed (alive remote members with load).
  std::uint64_t view_samples_ = 0, view_entries_ = 0, view_usable_ = 0;
  double view_age_sum_ms_ = 0;
  std::uint64_t view_fresh_1s_ = 0;  // entries at most 1 s old
  // The figures the placements actually compared (the sampled remote candidates).
  std::uint64_t decision_figures_ = 0;
  double decision_age_sum_ms_ = 0;
  env::TimeMs decision_age_max_ms_ = 0;
  std::uint64_t pull_datagrams_ = 0;  // kPull: requests and replies
  double balance_target_age_sum_ms_ = 0;
  // Gossip traffic over the measured period (after the warm-up; the join phase excluded).
  env::TimeMs measured_from_ms_ = 0;
  std::uint64_t datagrams_at_start_ = 0, bytes_at_start_ = 0, pull_at_start_ = 0;
  std::string first_placement_error_;
  // Processor sharing: slowdowns of the jobs submitted in the measured period (unfinished ones
  // count with their slowdown so far: a lower bound), response times, the central queue.
  std::uint64_t measured_jobs_ = 0, measured_done_ = 0;
  double slowdown_sum_ = 0, response_sum_ms_ = 0, slowdown_max_ = 0;
  std::vector<double> slowdowns_;
  std::uint64_t central_queued_ = 0;
  std::vector<std::uint64_t> central_queue_;
  std::size_t central_head_ = 0;
  double migration_busy_ms_ = 0;  // time jobs spent frozen in copies
  env::TimeMs view_age_max_ms_ = 0;
  double sum_ideal_ = 0, sum_max_ = 0, peak_max_ = 0, sum_stddev_ = 0, sum_excess_ = 0,
         sum_running_ = 0;
};

}  // namespace osmo::sim
