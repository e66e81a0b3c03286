// SPDX-License-Identifier: GPL-2.0-or-later
// The gossiped view as the policy sees it: one policy::Candidate per gossip::MemberView. The
// daemon and the simulator both convert through here, so the rules below are the only ones.
//
// Before this file the daemon (run_service.cpp) and the simulator (sim/workload.cpp) each had
// their own loop, with different rules for members never heard from, for the local node's age
// and for what a failed placement means. The rules now, for every caller:
//  - Only an `alive` member can be chosen. A suspect has missed its probes (a job sent there
//    would likely fail to start or die with it), a dead one is gone, a left one is leaving and
//    takes no new work. That includes the local node: a node that is leaving is no candidate
//    for its own jobs either.
//  - A member that never reported a load (joined, not yet heard) is kept, marked
//    load_known = false: it counts as known (and alive) in the reasons a placement gives, but is
//    never chosen. Its zeros are not a measurement; an idle-looking unknown node would win
//    every comparison. (The daemon used to give it a huge age, the simulator dropped it.)
//  - The local node's figure is always fresh (age 0): it is our own estimator's latest value,
//    set at every load sample; the gossip age of our own entry only says when that was.
//  - Every other member's figure carries its gossiped age; policy::Staleness decides how far it
//    is trusted (taken as is, penalised, or unusable).
#pragma once

#include <span>
#include <vector>

#include "gossip/node.hpp"
#include "policy/view.hpp"

namespace osmo::cluster_view {

// Converts a view (gossip::Node::members(): self included) into candidates, in the same order.
std::vector<policy::Candidate> candidates_from_view(std::span<const gossip::MemberView> view);

// One member, by the rules above.
policy::Candidate candidate_from_member(const gossip::MemberView& member);

}  // namespace osmo::cluster_view
