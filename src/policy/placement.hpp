// SPDX-License-Identifier: GPL-2.0-or-later
// Initial placement of a new job (`osmo run`): which node should start it, decided locally from
// the gossiped view, robust to stale information and to bursts.
//
// The method is "power of d choices" (Mitzenmacher): sample d remote candidates at random, weighted
// by capacity, and take the one whose load would be lowest with the new job added, comparing it
// with keeping the job at home. Sampling instead of taking the global minimum matters because every
// node places with a view that is seconds old: if all placers chose "the least loaded node" they
// would all choose the same one (herding), whereas d random choices keep the benefit of choosing
// (the maximum load drops exponentially compared with one random choice) without the stampede.
//
// Our own recent placements are remembered in a PlacementLedger until the target's gossiped load
// is new enough to include them, so a burst of 100 starts from one node spreads out instead of
// all landing on the node that looked idle at the start of the burst.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "env/clock.hpp"
#include "env/random.hpp"
#include "policy/view.hpp"

namespace osmo::policy {

// Recent placements (or migrations) this node has sent to each target that the target's gossiped
// load may not show yet. An entry counts until the target reports a load measured at least
// settle_ms after the placement (the job needs to start and the target's LoadEstimator to rise:
// with a 500 ms rise constant a new job is 95% visible after 1.5 s), and is forgotten after
// hold_max_ms in any case so that a target that never reports again does not pin entries forever.
class PlacementLedger {
 public:
  static constexpr env::TimeMs kDefaultSettleMs = 1500;
  static constexpr env::TimeMs kDefaultHoldMaxMs = 30'000;

  explicit PlacementLedger(env::TimeMs settle_ms = kDefaultSettleMs,
                           env::TimeMs hold_max_ms = kDefaultHoldMaxMs)
      : settle_ms_(settle_ms), hold_max_ms_(hold_max_ms) {}

  // Records that a job of `cpu_demand` runnable tasks and `mem_mb` memory was sent to `target`.
  void record(std::string_view target, env::TimeMs now, double cpu_demand = 1.0,
              std::uint64_t mem_mb = 0);

  struct Pending {
    double cpu = 0;           // runnable tasks not yet visible in the target's load
    std::uint64_t mem_mb = 0; // memory not yet visible in the target's free memory
    int jobs = 0;
  };
  // What the target has been sent but does not show in a load figure measured at `measured_at`.
  Pending pending(std::string_view target, env::TimeMs measured_at) const;

  // Drops entries older than hold_max_ms (called by record(); call it from a timer too).
  void prune(env::TimeMs now);

  std::size_t size() const;

 private:
  struct Entry {
    env::TimeMs placed_ms;
    double cpu;
    std::uint64_t mem_mb;
  };
  env::TimeMs settle_ms_;
  env::TimeMs hold_max_ms_;
  std::map<std::string, std::deque<Entry>, std::less<>> entries_;  // per target, oldest first
};

struct PlacementConfig {
  // d in "power of d choices": 2 already gives most of the benefit; 3 helps a little more on
  // heterogeneous clusters; more choices start to herd on stale information.
  int choices = 2;
  // Normalised load by which a remote node must beat home before we start the job remotely: a
  // remote start costs a relay and a network hop for the job's I/O for its whole life. 0.1 is a
  // tenth of home's capacity, i.e. less than one job on a node with fewer than 10 CPUs.
  double home_margin = 0.1;
  Staleness staleness;
};

struct PlacementRequest {
  double cpu_demand = 1.0;     // runnable tasks the job adds (1 for a CPU-bound single thread)
  std::uint64_t mem_mb = 0;    // memory the job needs free on the target; 0 = no requirement
};

struct Placement {
  std::string node;
  bool is_home = false;
  double score = 0;            // expected normalised load of `node` with the job, penalties included
  int considered = 0;          // candidates compared (home included)
  // The remote figures the decision compared, and their summed age: how fresh the information
  // was that the choice rested on (the simulator reports the mean).
  int remote_compared = 0;
  env::TimeMs remote_age_sum_ms = 0;
  env::TimeMs remote_age_max_ms = 0;
};

// Chooses the node to start a job on. `view` is every known member, the local node included
// (is_self). Never returns a non-alive node, a node whose information is older than
// staleness.max_age_ms, or one without mem_mb free once pending placements are counted; fails
// when no node qualifies. Deterministic given `random`'s state.
Result<Placement> choose_node(const PlacementRequest& request, std::span<const Candidate> view,
                              const PlacementLedger& ledger, env::TimeMs now, env::Random& random,
                              const PlacementConfig& config = {});

}  // namespace osmo::policy
