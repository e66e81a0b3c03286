// SPDX-License-Identifier: GPL-2.0-or-later
// Migration decisions: see balance.hpp for the rules and why they keep jobs from ping-ponging.
#include "policy/balance.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "policy/load_estimator.hpp"

namespace osmo::policy {

const char* to_string(MoveReason r) {
  switch (r) {
    case MoveReason::kLoad: return "load";
    case MoveReason::kMemory: return "memory";
    case MoveReason::kDrain: return "drain";
  }
  return "?";
}

env::TimeMs migration_cost_ms(const JobInfo& job, const BalanceConfig& config) {
  const double bw = config.migration_mb_per_s > 0 ? config.migration_mb_per_s : 1.0;
  return config.migration_fixed_ms +
         static_cast<env::TimeMs>(static_cast<double>(job.mem_mb) / bw * 1000.0);
}

void DepartureLog::record(env::TimeMs now, double cpu_share) {
  prune(now);
  entries_.push_back(Entry{now, std::max(cpu_share, 0.0)});
}

double DepartureLog::still_counted(env::TimeMs now) const {
  double sum = 0;
  const double tau = static_cast<double>(std::max<env::TimeMs>(fall_tau_ms_, 1));
  for (const auto& e : entries_)
    sum += e.cpu * std::exp(-static_cast<double>(std::max<env::TimeMs>(now - e.at_ms, 0)) / tau);
  return sum;
}

void DepartureLog::prune(env::TimeMs now) {
  std::erase_if(entries_, [&](const Entry& e) { return now - e.at_ms > 6 * fall_tau_ms_; });
}

env::TimeMs expected_remaining_ms(const JobInfo& job) {
  return job.cpu_used_ms >= 0 ? job.cpu_used_ms : job.age_ms;
}

const char* why_not_movable(const JobInfo& j, env::TimeMs now, const BalanceConfig& cfg) {
  if (j.pinned) return "pinned (--no-migrate)";
  if (j.age_ms < cfg.min_job_age_ms) return "too young";
  // Per-job cool-down: the residence needed doubles with every move the job has made.
  const int doublings = std::clamp(j.migrations, 0, std::max(cfg.residence_doubling_max, 0));
  if (j.residence_ms < cfg.min_residence_ms * (env::TimeMs{1} << doublings)) return "arrived recently";
  if (j.migrations >= cfg.max_migrations) return "moved too often";
  if (j.last_attempt_ms && now - *j.last_attempt_ms < cfg.attempt_backoff_ms)
    return "a move was refused or failed recently";
  if (j.interactive && (j.cpu_used_ms < 0 || j.cpu_used_ms < cfg.interactive_min_cpu_ms))
    return "interactive, little CPU used";
  const double cost = static_cast<double>(migration_cost_ms(j, cfg));
  if (static_cast<double>(expected_remaining_ms(j)) < cfg.min_benefit_ratio * cost)
    return "expected to end before a move pays off";
  return nullptr;
}

double stretch_sum(double runnable, double cpus, double speed) {
  if (runnable <= 0) return 0;
  if (cpus <= 0 || speed <= 0) return runnable * kNoCapacityLoad;
  return runnable * std::max(1.0, runnable / cpus) / speed;
}

double required_gain(const JobInfo& j, double source_cap, const std::string& target,
                     double target_cap, const BalanceConfig& cfg) {
  const double larger_cap = std::max(source_cap, target_cap);
  const double weight = larger_cap > 0 ? std::max(j.cpu_share, 0.0) / larger_cap : 0;
  double g = std::max(cfg.min_gain, cfg.min_gain_job_fraction * weight) *
             (1.0 + cfg.remigration_factor * j.migrations);
  const bool to_home = !j.home.empty() && target == j.home;
  if (!to_home && j.relay_bytes_per_s > 0 && cfg.relay_full_bytes_per_s > 0)
    g += cfg.relay_gain_weight * std::min(1.0, j.relay_bytes_per_s / cfg.relay_full_bytes_per_s);
  return g;
}

namespace {

struct Target {
  const Candidate* c;
  double cap;
  double runnable;         // effective: gossiped + staleness penalty + our pending arrivals
  double load;             // runnable / cap
  std::int64_t mem_free_mb;  // minus our pending arrivals; may go negative
};

}  // namespace

std::optional<Move> decide_balance(const LocalState& local, std::span<const Candidate> view,
                                   std::span<const JobInfo> jobs, const PlacementLedger& ledger,
                                   env::TimeMs now, env::Random& random,
                                   const BalanceConfig& config) {
  if (local.last_migration_out_ms && now - *local.last_migration_out_ms < config.cooldown_ms)
    return std::nullopt;
  const double src_cap = capacity(local.cpus, local.speed);
  if (src_cap <= 0) return std::nullopt;  // nothing runs here; draining is not the balancer's job

  std::vector<const JobInfo*> movable;
  for (const auto& j : jobs)
    if (why_not_movable(j, now, config) == nullptr) movable.push_back(&j);
  if (movable.empty()) return std::nullopt;

  std::vector<Target> targets;
  for (const auto& c : view) {
    if (c.is_self || c.name == local.name || !c.alive || !c.load_known) continue;
    if (c.draining || !c.takes_auto_migrations) continue;
    const env::TimeMs age = std::max<env::TimeMs>(c.load_age_ms, 0);
    if (!config.staleness.usable(age)) continue;
    const double cap = capacity(c.cpus, c.speed);
    if (cap <= 0) continue;
    const auto pend = ledger.pending(c.name, now - age);
    const double runnable = (c.load + config.staleness.penalty(age)) * cap + pend.cpu;
    targets.push_back(Target{&c, cap, runnable, runnable / cap,
                             static_cast<std::int64_t>(c.mem_free_mb) -
                                 static_cast<std::int64_t>(pend.mem_mb)});
  }
  // Only the freshest figures are sampled (policy/view.hpp, Staleness::pool).
  const auto pool = static_cast<std::size_t>(std::max(config.staleness.pool, 0));
  if (pool > 0 && targets.size() > pool) {
    keep_freshest(targets, pool, random.next_u64(),
                  [](const Target& x) { return x.c->load_age_ms; },
                  [](const Target& x) -> const std::string& { return x.c->name; });
  }
  // Examine a few targets drawn at random, weighted by capacity, not the least loaded of the view:
  // every overloaded node holds roughly the same seconds-old view, and if each sent its job to
  // "the least loaded node" they would all send to the same one (herding). The simulator showed
  // it: with deterministic choice, balancing 300 nodes made the peak load worse than no
  // balancing at all. Sampling is the power-of-d remedy, as for placement.
  const auto k = static_cast<std::size_t>(std::max(config.candidates_examined, 1));
  if (targets.size() > k) {
    std::vector<Target> picked;
    picked.reserve(k);
    std::vector<double> prefix(targets.size());
    double total = 0;
    for (std::size_t i = 0; i < targets.size(); ++i) prefix[i] = total += targets[i].cap;
    std::vector<bool> taken(targets.size(), false);
    for (std::size_t attempt = 0; picked.size() < k && attempt < 8 * k; ++attempt) {
      auto i = static_cast<std::size_t>(
          std::upper_bound(prefix.begin(), prefix.end(), random.unit() * total) - prefix.begin());
      if (i >= targets.size()) i = targets.size() - 1;
      if (taken[i]) continue;
      taken[i] = true;
      picked.push_back(targets[i]);
    }
    targets = std::move(picked);
  }
  std::sort(targets.begin(), targets.end(), [](const Target& a, const Target& b) {
    if (a.load != b.load) return a.load < b.load;
    return a.c->name < b.c->name;
  });
  if (targets.empty()) return std::nullopt;

  const double src_runnable = std::max(0.0, local.runnable - std::max(0.0, local.departed_runnable));
  const double src_before = src_runnable / src_cap;
  auto fits = [](const Target& t, const JobInfo& j) {
    return j.mem_mb == 0 || t.mem_free_mb >= static_cast<std::int64_t>(j.mem_mb);
  };

  // 1. Load balance: the pair's peak load must drop by the required gain.
  std::optional<Move> best;
  double best_slack = 0;
  for (const JobInfo* j : movable) {
    const double src_after = std::max(0.0, src_runnable - j->cpu_share) / src_cap;
    const env::TimeMs cost = migration_cost_ms(*j, config);
    for (const Target& t : targets) {
      if (!fits(t, *j)) continue;
      const double required = required_gain(*j, src_cap, t.c->name, t.cap, config);
      const double dst_after = (t.runnable + j->cpu_share) / t.cap;
      const double gain = src_before - std::max(src_after, dst_after);
      const double slack = gain - required;
      // Strictly above, by more than rounding: between equal nodes a job that moved twice needs
      // exactly the gain a move can give, and must not move again by a last-digit accident
      // (the testbed logged "gain 0.91 > 0.91").
      if (slack <= kGainEpsilon) continue;
      const double stretch_gain =
          stretch_sum(src_runnable, local.cpus, local.speed) +
          stretch_sum(t.runnable, t.c->cpus, t.c->speed) -
          stretch_sum(std::max(0.0, src_runnable - j->cpu_share), local.cpus, local.speed) -
          stretch_sum(t.runnable + j->cpu_share, t.c->cpus, t.c->speed);
      if (stretch_gain < config.min_stretch_gain - kGainEpsilon) continue;
      // Prefer the largest slack; then the less loaded target (when our own load after the move
      // is the peak, many targets give the same gain); then the cheaper move; then lower job id,
      // then target name.
      bool take = !best || slack > best_slack;
      if (best && slack == best_slack) {
        if (dst_after != best->target_load_after) {
          take = dst_after < best->target_load_after;
        } else if (cost != best->cost_ms) {
          take = cost < best->cost_ms;
        } else if (j->id != best->job_id) {
          take = j->id < best->job_id;
        } else {
          take = t.c->name < best->target;
        }
      }
      if (take) {
        best = Move{j->id, t.c->name, MoveReason::kLoad, gain, src_after, dst_after, cost,
                    std::max<env::TimeMs>(t.c->load_age_ms, 0), src_before, required,
                    j->cpu_share, j->mem_mb};
        best_slack = slack;
      }
    }
  }
  if (best) return best;

  // 2. Memory ushering: free the most memory without making the CPU balance worse.
  if (memory_pressure(local.mem_free_mb, local.mem_total_mb) <= config.memory_high ||
      local.mem_total_mb == 0)
    return std::nullopt;
  std::vector<const JobInfo*> by_mem(movable);
  std::sort(by_mem.begin(), by_mem.end(), [](const JobInfo* a, const JobInfo* b) {
    if (a->mem_mb != b->mem_mb) return a->mem_mb > b->mem_mb;
    return a->id < b->id;
  });
  for (const JobInfo* j : by_mem) {
    if (j->mem_mb == 0) break;
    for (const Target& t : targets) {  // least loaded first
      if (t.c->mem_total_mb == 0 || !fits(t, *j)) continue;
      const double free_after = static_cast<double>(t.mem_free_mb - static_cast<std::int64_t>(j->mem_mb));
      const double pressure_after = 1.0 - free_after / static_cast<double>(t.c->mem_total_mb);
      if (pressure_after > config.memory_target_max) continue;
      // Not CPU-overloaded after: at most max(1.0, our load now), give or take half the job's
      // own weight there (a job alone on a half-CPU node is 2.0 wherever it runs, and our
      // measured load hovers around that).
      const double dst_after = (t.runnable + j->cpu_share) / t.cap;
      if (dst_after > std::max(src_before, 1.0) + config.min_gain_job_fraction * j->cpu_share / t.cap)
        continue;
      const double src_after = std::max(0.0, src_runnable - j->cpu_share) / src_cap;
      return Move{j->id, t.c->name, MoveReason::kMemory, src_before - std::max(src_after, dst_after),
                  src_after, dst_after, migration_cost_ms(*j, config),
                  std::max<env::TimeMs>(t.c->load_age_ms, 0), src_before,
                  /*required_gain=*/-kNoCapacityLoad, j->cpu_share, j->mem_mb};
    }
  }
  return std::nullopt;
}

}  // namespace osmo::policy
