// SPDX-License-Identifier: GPL-2.0-or-later
// Where a draining node's guests go (see drain.hpp).
#include "policy/drain.hpp"

#include <algorithm>
#include <vector>

#include "policy/load_estimator.hpp"

namespace osmo::policy {

bool must_leave_when_draining(const JobInfo& job, const std::string& local_name) {
  return !job.pinned && !job.home.empty() && job.home != local_name;
}

std::optional<Move> decide_drain(const LocalState& local, std::span<const Candidate> view,
                                 std::span<const JobInfo> jobs, const PlacementLedger& ledger,
                                 env::TimeMs now, env::Random& random, const DrainConfig& config) {
  std::vector<const JobInfo*> guests;
  for (const auto& j : jobs) {
    if (!must_leave_when_draining(j, local.name)) continue;
    if (j.last_attempt_ms && now - *j.last_attempt_ms < config.attempt_backoff_ms) continue;
    guests.push_back(&j);
  }
  if (guests.empty()) return std::nullopt;
  std::sort(guests.begin(), guests.end(), [](const JobInfo* a, const JobInfo* b) {
    if (a->mem_mb != b->mem_mb) return a->mem_mb < b->mem_mb;
    return a->id < b->id;
  });
  // This node takes nothing: it is out of its own view (whatever its gossiped flag says yet).
  std::vector<Candidate> others;
  others.reserve(view.size());
  for (const auto& c : view)
    if (!c.is_self && c.name != local.name) others.push_back(c);
  const double src_cap = capacity(local.cpus, local.speed);
  const double src_runnable = std::max(local.runnable - std::max(local.departed_runnable, 0.0), 0.0);
  const double src_before = src_cap > 0 ? src_runnable / src_cap : 0;
  for (const JobInfo* j : guests) {
    PlacementRequest req;
    req.cpu_demand = j->cpu_share;
    req.mem_mb = j->mem_mb;
    std::string target;
    double target_after = 0;
    env::TimeMs age = 0;
    if (auto p = choose_node(req, others, ledger, now, random, config.placement); p.ok()) {
      target = p->node;
      target_after = p->score;
      age = p->remote_age_max_ms;
    } else {
      // Nobody placement trusts can take it: home, if home is up, not draining itself, and can
      // hold the job's memory as far as we know (its figure may be too old for placement).
      for (const auto& c : others)
        if (c.name == j->home && c.alive && !c.draining && c.load_known &&
            (j->mem_mb == 0 || c.mem_free_mb >= j->mem_mb))
          target = c.name;
    }
    if (target.empty()) continue;
    Move m;
    m.job_id = j->id;
    m.target = target;
    m.reason = MoveReason::kDrain;
    m.source_load_before = src_before;
    m.source_load_after = src_cap > 0 ? std::max(0.0, src_runnable - j->cpu_share) / src_cap : 0;
    m.target_load_after = target_after;
    m.target_load_age_ms = age;
    m.cpu_share = j->cpu_share;
    m.mem_mb = j->mem_mb;
    m.cost_ms = migration_cost_ms(*j, BalanceConfig{});
    return m;
  }
  return std::nullopt;
}

}  // namespace osmo::policy
