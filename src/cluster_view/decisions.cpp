// SPDX-License-Identifier: GPL-2.0-or-later
// The placement and balancing calls (see decisions.hpp).
#include "cluster_view/decisions.hpp"

#include "cluster_view/candidates.hpp"

namespace osmo::cluster_view {

Result<policy::Placement> place_job(const policy::PlacementRequest& request,
                                    std::span<const gossip::MemberView> view,
                                    policy::PlacementLedger& ledger, env::TimeMs now,
                                    env::Random& random, const policy::PlacementConfig& config) {
  const auto candidates = candidates_from_view(view);
  auto p = policy::choose_node(request, candidates, ledger, now, random, config);
  if (p.ok()) ledger.record(p->node, now, request.cpu_demand, request.mem_mb);
  return p;
}

std::optional<policy::Move> decide_move(const policy::LocalState& local,
                                        std::span<const gossip::MemberView> view,
                                        std::span<const policy::JobInfo> jobs,
                                        const policy::PlacementLedger& ledger, env::TimeMs now,
                                        env::Random& random, const policy::BalanceConfig& config) {
  const auto candidates = candidates_from_view(view);
  return policy::decide_balance(local, candidates, jobs, ledger, now, random, config);
}

}  // namespace osmo::cluster_view
