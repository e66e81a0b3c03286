// SPDX-License-Identifier: GPL-2.0-or-later
// Initial placement: power of d choices over the gossiped view (see placement.hpp).
#include "policy/placement.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "policy/load_estimator.hpp"

namespace osmo::policy {

void PlacementLedger::record(std::string_view target, env::TimeMs now, double cpu_demand,
                             std::uint64_t mem_mb) {
  prune(now);
  auto it = entries_.find(target);
  if (it == entries_.end()) it = entries_.emplace(std::string(target), std::deque<Entry>{}).first;
  it->second.push_back(Entry{now, cpu_demand, mem_mb});
}

PlacementLedger::Pending PlacementLedger::pending(std::string_view target,
                                                  env::TimeMs measured_at) const {
  Pending p;
  auto it = entries_.find(target);
  if (it == entries_.end()) return p;
  // Newest first: once an entry is covered by the measurement, all older ones are too.
  for (auto e = it->second.rbegin(); e != it->second.rend(); ++e) {
    if (e->placed_ms + settle_ms_ <= measured_at) break;
    p.cpu += e->cpu;
    p.mem_mb += e->mem_mb;
    ++p.jobs;
  }
  return p;
}

void PlacementLedger::prune(env::TimeMs now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto& q = it->second;
    while (!q.empty() && q.front().placed_ms + hold_max_ms_ < now) q.pop_front();
    it = q.empty() ? entries_.erase(it) : std::next(it);
  }
}

std::size_t PlacementLedger::size() const {
  std::size_t n = 0;
  for (const auto& [name, q] : entries_) n += q.size();
  return n;
}

namespace {

struct Scored {
  const Candidate* c;
  double cap;
  double score;
};

// Expected normalised load of `c` once the job is added, counting our pending placements and
// charging the staleness penalty. nullopt when `c` cannot take the job at all.
std::optional<Scored> score(const Candidate& c, const PlacementRequest& req,
                            const PlacementLedger& ledger, env::TimeMs now,
                            const PlacementConfig& cfg) {
  if (!c.alive || !c.load_known || c.draining) return std::nullopt;
  const env::TimeMs age = c.is_self ? 0 : std::max<env::TimeMs>(c.load_age_ms, 0);
  if (!cfg.staleness.usable(age)) return std::nullopt;
  const double cap = capacity(c.cpus, c.speed);
  if (cap <= 0) return std::nullopt;
  const auto pend = ledger.pending(c.name, now - age);
  if (req.mem_mb > 0) {
    const std::uint64_t free = c.mem_free_mb > pend.mem_mb ? c.mem_free_mb - pend.mem_mb : 0;
    if (free < req.mem_mb) return std::nullopt;
  }
  double s = (c.load * cap + pend.cpu + req.cpu_demand) / cap + cfg.staleness.penalty(age);
  if (c.is_self) s -= cfg.home_margin;
  return Scored{&c, cap, s};
}

// Strict "better than" with deterministic tie-breaks: lower score, then home, then more capacity,
// then name (the view's order must not matter).
bool better(const Scored& a, const Scored& b) {
  if (a.score != b.score) return a.score < b.score;
  if (a.c->is_self != b.c->is_self) return a.c->is_self;
  if (a.cap != b.cap) return a.cap > b.cap;
  return a.c->name < b.c->name;
}

}  // namespace

Result<Placement> choose_node(const PlacementRequest& request, std::span<const Candidate> view,
                              const PlacementLedger& ledger, env::TimeMs now, env::Random& random,
                              const PlacementConfig& config) {
  std::optional<Scored> home;
  std::vector<Scored> remote;
  remote.reserve(view.size());
  std::size_t alive = 0, fresh = 0;
  std::uint64_t largest_free_mb = 0;
  for (const auto& c : view) {
    if (c.alive) {
      ++alive;
      largest_free_mb = std::max(largest_free_mb, c.mem_free_mb);
      fresh += c.load_known && (c.is_self || config.staleness.usable(c.load_age_ms)) &&
               capacity(c.cpus, c.speed) > 0;
    }
    auto s = score(c, request, ledger, now, config);
    if (!s) continue;
    if (c.is_self) {
      home = s;
    } else {
      remote.push_back(*s);
    }
  }
  if (!home && remote.empty()) {
    if (request.mem_mb > 0) {
      return make_error("no node can take the job: none has {} MB free ({} alive members, largest "
                        "free {} MB)",
                        request.mem_mb, alive, largest_free_mb);
    }
    return make_error("no node can take the job: no alive member with fresh load information ({} "
                      "known, {} alive, {} of them with a load younger than {} ms and a capacity)",
                      view.size(), alive, fresh, config.staleness.max_age_ms);
  }

  // Only the freshest figures are sampled (policy/view.hpp, Staleness::pool).
  const auto pool = static_cast<std::size_t>(std::max(config.staleness.pool, 0));
  if (pool > 0 && remote.size() > pool) {
    keep_freshest(remote, pool, random.next_u64(),
                  [](const Scored& x) { return x.c->load_age_ms; },
                  [](const Scored& x) -> const std::string& { return x.c->name; });
  }
  // Sample d distinct remote candidates with probability proportional to capacity.
  const std::size_t d = static_cast<std::size_t>(std::max(config.choices, 1));
  std::vector<const Scored*> picked;
  if (remote.size() <= d) {
    for (const auto& s : remote) picked.push_back(&s);
  } else {
    std::vector<double> prefix(remote.size());
    double total = 0;
    for (std::size_t i = 0; i < remote.size(); ++i) prefix[i] = total += remote[i].cap;
    std::vector<bool> taken(remote.size(), false);
    // Rejecting duplicates: with d << n they are rare; the bound keeps a pathological view (one
    // huge node and many tiny ones) from looping, at worst picking fewer than d.
    for (std::size_t attempt = 0; picked.size() < d && attempt < 8 * d; ++attempt) {
      const double x = random.unit() * total;
      std::size_t i = static_cast<std::size_t>(std::upper_bound(prefix.begin(), prefix.end(), x) -
                                               prefix.begin());
      if (i >= remote.size()) i = remote.size() - 1;
      if (taken[i]) continue;
      taken[i] = true;
      picked.push_back(&remote[i]);
    }
  }

  const Scored* best = home ? &*home : nullptr;
  for (const Scored* s : picked) {
    if (!best || better(*s, *best)) best = s;
  }
  Placement p;
  p.node = best->c->name;
  p.is_home = best->c->is_self;
  p.score = best->score + (p.is_home ? config.home_margin : 0);
  p.considered = static_cast<int>(picked.size()) + (home ? 1 : 0);
  for (const Scored* s : picked) {
    const env::TimeMs age = std::max<env::TimeMs>(s->c->load_age_ms, 0);
    ++p.remote_compared;
    p.remote_age_sum_ms += age;
    p.remote_age_max_ms = std::max(p.remote_age_max_ms, age);
  }
  return p;
}

}  // namespace osmo::policy
