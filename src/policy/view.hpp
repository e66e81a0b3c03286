// SPDX-License-Identifier: GPL-2.0-or-later
// The policy's picture of the cluster: one Candidate per known node, as the gossiped view shows it
// (src/cluster_view converts gossip::MemberView into these, for the daemon and the simulator
// alike, so that policy depends on nothing but base/ and env/), plus the rules for trusting
// information of a given age.
#pragma once

#include <cstdint>
#include <string>

#include "env/clock.hpp"

namespace osmo::policy {

struct Candidate {
  std::string name;
  bool alive = false;               // only alive members are ever chosen (not suspect, dead, left)
  bool is_self = false;             // the local node (its load is always fresh)
  bool load_known = true;           // false: the member never reported a load (never chosen)
  double load = 0;                  // smoothed runnable / capacity, as gossiped (see load_estimator.hpp)
  double cpus = 0;
  double speed = 1.0;
  std::uint64_t mem_free_mb = 0;
  std::uint64_t mem_total_mb = 0;   // 0 when unknown
  env::TimeMs load_age_ms = 0;      // how old `load` is now
};

// How much gossiped load figures are trusted as they age. With a load message every 250 ms and a
// window of 16 entries, a node of a large cluster usually hears about a given peer every few
// seconds, so information up to 2 s old is taken at face value. Older figures are charged a
// penalty that grows with age (the node may have been given work by others meanwhile: assume its
// load drifts up by 0.1 of its capacity per second), and beyond 10 s they are ignored: by then the
// node has either been chosen by others or is about to be reported anyway.
struct Staleness {
  env::TimeMs fresh_ms = 2000;
  env::TimeMs max_age_ms = 10'000;
  double penalty_per_s = 0.1;

  bool usable(env::TimeMs age_ms) const { return age_ms <= max_age_ms; }
  // Extra normalised load charged to a figure of the given age.
  double penalty(env::TimeMs age_ms) const {
    if (age_ms <= fresh_ms) return 0;
    return penalty_per_s * static_cast<double>(age_ms - fresh_ms) / 1000.0;
  }
};

}  // namespace osmo::policy
