// SPDX-License-Identifier: GPL-2.0-or-later
// The placement and balancing calls, from a gossiped view to a decision: what `osmo run` does on
// the daemon and what every simulated node does, in one place.
//
// When no node is usable, the job is refused with the policy's reason. The daemon answers
// `no_node` with it; the simulator counts the job as refused (`placement_failures`) and does not
// start it. There is deliberately no "start it at home anyway": nothing is usable only when this
// node cannot take work itself (it is leaving, or measured no capacity) and no peer has a fresh
// load figure, or when no node has the memory the job asks for. Starting it here would put it
// where this node said it cannot run (a leaving node would have to move or kill it, a node
// without the memory would swap or OOM). The user sees why, and may pin the job (`--node`,
// `--home`), which does not go through placement.
//
// The other fallback is the same on both sides too: when the chosen node turns out to be
// unreachable (the view said alive), the job starts at home. That is the caller's (the daemon
// dials, the simulator checks the node is up), since it needs the network.
#pragma once

#include <optional>
#include <span>

#include "base/result.hpp"
#include "env/clock.hpp"
#include "env/random.hpp"
#include "gossip/node.hpp"
#include "policy/balance.hpp"
#include "policy/drain.hpp"
#include "policy/placement.hpp"
#include "policy/reservation.hpp"

namespace osmo::cluster_view {

// Chooses the node for a new job from `view` (gossip::Node::members(), self included) with
// policy::choose_node, and records the choice in `ledger` so that a burst of starts spreads out
// before gossip shows them. Fails, recording nothing, when no node can take the job.
Result<policy::Placement> place_job(const policy::PlacementRequest& request,
                                    std::span<const gossip::MemberView> view,
                                    policy::PlacementLedger& ledger, env::TimeMs now,
                                    env::Random& random,
                                    const policy::PlacementConfig& config = {});

// Whether one of `jobs` should move and where (policy::decide_balance on the converted view).
// The caller carries the move out, then records it in the ledger and as its last migration out.
std::optional<policy::Move> decide_move(const policy::LocalState& local,
                                        std::span<const gossip::MemberView> view,
                                        std::span<const policy::JobInfo> jobs,
                                        const policy::PlacementLedger& ledger, env::TimeMs now,
                                        env::Random& random,
                                        const policy::BalanceConfig& config = {});

// This node as the balancer sees itself: its own member of `view` (is_self; the figures it last
// handed to set_local_load), plus when it last sent a job away. nullopt when the view has no self
// entry with a load yet (the daemon has not sampled; nothing to decide).
std::optional<policy::LocalState> local_state_from_view(std::span<const gossip::MemberView> view,
                                                        std::optional<env::TimeMs> last_migration_out_ms);

// Where the next guest of a draining node goes (policy::decide_drain on the converted view).
std::optional<policy::Move> decide_drain_move(const policy::LocalState& local,
                                              std::span<const gossip::MemberView> view,
                                              std::span<const policy::JobInfo> jobs,
                                              const policy::PlacementLedger& ledger, env::TimeMs now,
                                              env::Random& random,
                                              const policy::DrainConfig& config = {});

// The offer a source makes for `move` of the job `job` (its cluster id) from `source`.
policy::MoveOffer offer_for(const policy::Move& move, std::string job, std::string source);

// The target's answer to `offer`, on its own view (its self member, fresh), with what it promised.
// The caller reserves on acceptance (book.reserve). A view without a self load refuses.
// `departed_runnable`: what our own smoothed load still counts of jobs we sent away
// (policy::DepartureLog), taken off our figure as the balancer does.
policy::Verdict judge_offer(const policy::MoveOffer& offer, std::span<const gossip::MemberView> view,
                            const policy::ReservationBook& book, env::TimeMs now,
                            const policy::BalanceConfig& config = {}, double departed_runnable = 0);

}  // namespace osmo::cluster_view
