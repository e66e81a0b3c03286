// SPDX-License-Identifier: GPL-2.0-or-later
// The placement and balancing calls (see decisions.hpp).
#include "cluster_view/decisions.hpp"

#include <algorithm>

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

std::optional<policy::LocalState> local_state_from_view(std::span<const gossip::MemberView> view,
                                                        std::optional<env::TimeMs> last_migration_out_ms) {
  for (const auto& m : view) {
    if (!m.is_self || !m.load) continue;
    policy::LocalState s;
    s.name = m.name;
    s.runnable = m.load->runnable;
    s.cpus = m.load->cpus;
    s.speed = m.load->speed;
    s.mem_free_mb = m.load->mem_free_mb;
    s.mem_total_mb = m.load->mem_total_mb;
    s.last_migration_out_ms = last_migration_out_ms;
    return s;
  }
  return std::nullopt;
}

std::optional<policy::Move> decide_drain_move(const policy::LocalState& local,
                                              std::span<const gossip::MemberView> view,
                                              std::span<const policy::JobInfo> jobs,
                                              const policy::PlacementLedger& ledger, env::TimeMs now,
                                              env::Random& random, const policy::DrainConfig& config) {
  const auto candidates = candidates_from_view(view);
  return policy::decide_drain(local, candidates, jobs, ledger, now, random, config);
}

policy::MoveOffer offer_for(const policy::Move& move, std::string job, std::string source) {
  policy::MoveOffer o;
  o.job = std::move(job);
  o.source = std::move(source);
  o.reason = move.reason;
  o.cpu_share = move.cpu_share;
  o.mem_mb = move.mem_mb;
  o.source_load_before = move.source_load_before;
  o.source_load_after = move.source_load_after;
  o.required_gain = move.required_gain;
  o.cost_ms = move.cost_ms;
  return o;
}

policy::Verdict judge_offer(const policy::MoveOffer& offer, std::span<const gossip::MemberView> view,
                            const policy::ReservationBook& book, env::TimeMs now,
                            const policy::BalanceConfig& config, double departed_runnable) {
  for (const auto& m : view) {
    if (!m.is_self || !m.load) continue;
    policy::Candidate self = candidate_from_member(m);
    const double cap = policy::capacity(self.cpus, self.speed);
    if (cap > 0 && departed_runnable > 0)
      self.load = std::max(0.0, self.load - departed_runnable / cap);
    return policy::accept_move(self, offer, book, now, config);
  }
  policy::Verdict v;
  v.why = "this node has not measured its load yet";
  return v;
}

}  // namespace osmo::cluster_view
