// SPDX-License-Identifier: GPL-2.0-or-later
// Draining a node (`osmo drain`, and the daemon's SIGTERM): every guest job (one whose home is
// another node) moves away, one at a time, to where a new job would be placed (the placement
// rule: power of two choices among the freshest figures, weighted by capacity, the ledger
// counting what we already sent), or home when no node can take it. Pure, like the balancer.
//
// What stays: jobs whose home is this node (their `osmo run` is here; they end with it), jobs
// pinned with --no-migrate, and a job whose move failed moments ago (tried again after
// attempt_backoff_ms).
#pragma once

#include <optional>
#include <span>

#include "env/clock.hpp"
#include "env/random.hpp"
#include "policy/balance.hpp"
#include "policy/placement.hpp"
#include "policy/view.hpp"

namespace osmo::policy {

struct DrainConfig {
  PlacementConfig placement;
  // A job whose move failed is tried again after this long (the target may have been busy).
  env::TimeMs attempt_backoff_ms = 2000;
};

// True when `job` is a guest here that a drain must move (home elsewhere, not pinned).
bool must_leave_when_draining(const JobInfo& job, const std::string& local_name);

// The next drain move: the guest job that is cheapest to move (least memory, then lowest id),
// to the node placement chooses among `view` without this node, or to its home. nullopt when no
// guest is left to move now (or none can go anywhere).
std::optional<Move> decide_drain(const LocalState& local, std::span<const Candidate> view,
                                 std::span<const JobInfo> jobs, const PlacementLedger& ledger,
                                 env::TimeMs now, env::Random& random,
                                 const DrainConfig& config = {});

}  // namespace osmo::policy
