// SPDX-License-Identifier: GPL-2.0-or-later
// The simulator's experiments (see scenarios.hpp for what each measures).
#include "sim/scenarios.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <unordered_set>

namespace osmo::sim {
namespace {

using Pred = std::function<bool()>;

// Drives a cluster forward in steps, scanning every view for wrong verdicts every scan_ms.
class Runner {
 public:
  Runner(Cluster& c, const ScenarioOptions& o) : c_(c), o_(o) {}

  // Restricts false-death accounting to the (observer, subject) pairs for which a "dead" verdict
  // is wrong by construction (e.g. the same side of a partition).
  void set_relevant(std::function<bool(std::uint32_t, std::uint32_t)> f) { relevant_ = std::move(f); }

  // Runs until `pred` holds (checked every step) and returns the time it first held, or -1 when
  // it did not within `limit_ms` from now.
  env::TimeMs wait_for(const Pred& pred, env::TimeMs limit_ms) {
    const env::TimeMs deadline = c_.now() + limit_ms;
    for (;;) {
      if (pred()) return c_.now();
      if (c_.now() >= deadline) return -1;
      step(std::min(deadline, c_.now() + o_.step_ms));
    }
  }
  void advance(env::TimeMs until_ms) {
    while (c_.now() < until_ms) step(std::min(until_ms, c_.now() + o_.step_ms));
  }

  // A false death: an observer that is up sees as dead (or left) a node that is up and was never
  // killed in this run. Counted once per (observer, subject) pair.
  void scan() {
    ++scans_;
    std::uint64_t agree = 0, total = 0;
    for (std::uint32_t i = 0; i < c_.size(); ++i) {
      const SimNode& s = c_.node(i);
      if (!s.up) continue;
      for (const auto& m : s.node->members()) {
        if (m.is_self) continue;
        const int j = c_.index_of(m.name);
        if (j < 0) continue;
        const SimNode& subject = c_.node(static_cast<std::uint32_t>(j));
        const bool says_alive = m.state == gossip::MemberState::kAlive;
        ++total;
        agree += says_alive == subject.up;
        if (!subject.up || subject.ever_killed) continue;
        if (relevant_ && !relevant_(i, static_cast<std::uint32_t>(j))) continue;
        if (m.state == gossip::MemberState::kDead || m.state == gossip::MemberState::kLeft) {
          if (false_pairs_.insert(static_cast<std::uint64_t>(i) * c_.size() + j).second) {
            if (first_false_ms_ < 0) first_false_ms_ = c_.now();
            last_false_ms_ = c_.now();
            c_.trace().add(std::string_view("false-death"));
            c_.trace().add(static_cast<std::uint64_t>(c_.now()));
          }
          false_subjects_.insert(static_cast<std::uint32_t>(j));
        } else if (m.state == gossip::MemberState::kSuspect) {
          ++suspect_sightings_;
        }
      }
    }
    if (total > 0) {
      sum_accuracy_ += static_cast<double>(agree) / static_cast<double>(total);
      ++accuracy_samples_;
    }
  }

  void report(Metrics& m) const {
    m.set("view_scans", scans_);
    m.set("false_deaths", static_cast<std::uint64_t>(false_pairs_.size()));
    m.set("false_dead_nodes", static_cast<std::uint64_t>(false_subjects_.size()));
    // When they were first and last seen (-1: never), to tell join-time from steady-state ones.
    m.set("false_death_first_seen_ms", first_false_ms_);
    m.set("false_death_last_seen_ms", last_false_ms_);
    m.set("false_suspect_sightings", suspect_sightings_);
    m.set("view_accuracy_mean", accuracy_samples_ ? sum_accuracy_ / accuracy_samples_ : 1.0);
  }

 private:
  void step(env::TimeMs to) {
    c_.run_until(to);
    if (o_.scan_ms > 0 && c_.now() >= next_scan_ms_) {
      scan();
      next_scan_ms_ = c_.now() + o_.scan_ms;
    }
  }

  Cluster& c_;
  const ScenarioOptions& o_;
  std::function<bool(std::uint32_t, std::uint32_t)> relevant_;
  env::TimeMs next_scan_ms_ = 0;
  std::uint64_t scans_ = 0;
  std::unordered_set<std::uint64_t> false_pairs_;
  std::unordered_set<std::uint32_t> false_subjects_;
  std::uint64_t suspect_sightings_ = 0;
  env::TimeMs first_false_ms_ = -1;
  env::TimeMs last_false_ms_ = -1;
  double sum_accuracy_ = 0;
  std::uint64_t accuracy_samples_ = 0;
};

// Nodes to fail: random, never one of the seeds (so that joins keep working).
std::vector<std::uint32_t> pick_victims(Cluster& c, env::Random& r, int k) {
  std::vector<std::uint32_t> pool;
  const auto seeds = static_cast<std::uint32_t>(std::max(c.config().seed_nodes, 1));
  for (std::uint32_t i = seeds; i < c.size(); ++i)
    if (c.node(i).up) pool.push_back(i);
  std::vector<std::uint32_t> out;
  for (int n = 0; n < k && !pool.empty(); ++n) {
    const auto at = r.uniform(pool.size());
    out.push_back(pool[at]);
    pool[at] = pool.back();
    pool.pop_back();
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::uint32_t> up_nodes(Cluster& c) {
  std::vector<std::uint32_t> v;
  for (std::uint32_t i = 0; i < c.size(); ++i)
    if (c.node(i).up) v.push_back(i);
  return v;
}

void common_metrics(Cluster& c, Metrics& m) {
  m.set("virtual_ms", c.now());
  m.set("events", c.events_processed());
  m.set("datagrams_sent", c.datagrams_sent());
  m.set("datagrams_delivered", c.datagrams_delivered());
  m.set("datagrams_dropped", c.datagrams_dropped());
  m.set("datagrams_lost", c.datagrams_lost());
  m.set("datagrams_blocked", c.datagrams_blocked());
  m.set("datagrams_to_dead", c.datagrams_to_dead());
  const double node_s = static_cast<double>(c.size()) * static_cast<double>(c.now()) / 1000.0;
  m.set("datagrams_per_node_s", node_s > 0 ? static_cast<double>(c.datagrams_sent()) / node_s : 0.0);
  m.set("bytes_per_node_s", node_s > 0 ? static_cast<double>(c.bytes_sent()) / node_s : 0.0);
  const auto k = c.total_counters();
  m.set("gossip_probes", k.probes_sent);
  m.set("gossip_indirect_probes", k.indirect_probes);
  m.set("gossip_suspicions", k.suspicions);
  m.set("gossip_refutations", k.refutations);
  m.set("gossip_dropped_bad_mac", k.dropped_bad_mac);
  m.set("gossip_dropped_malformed", k.dropped_malformed);
  m.set("gossip_dropped_replay", k.dropped_replay);  // 0 unless a datagram outlives the window
  m.set("trace_hash", c.trace().hex());
}

// Every membership scenario ends the same way: the runner's view scans, then the cluster figures.
Metrics finish(Runner& r, Cluster& c, Metrics& m) {
  r.report(m);
  common_metrics(c, m);
  return m;
}

void header(const std::string& name, const ScenarioOptions& o, Metrics& m) {
  m.set("scenario", name);
  m.set("nodes", o.cluster.nodes);
  m.set("seed", o.cluster.seed);
  m.set("loss", o.cluster.loss);
  m.set("latency_ms", fmt::format("{}-{}", o.cluster.latency_min_ms, o.cluster.latency_max_ms));
}

// Starts everyone and waits for convergence; records the time as `key`.
env::TimeMs join(Cluster& c, Runner& r, const ScenarioOptions& o, Metrics& m,
                 const std::string& key) {
  c.start_all();
  c.run_until(o.cluster.join_spread_ms);  // everyone has at least started joining
  const env::TimeMs t = r.wait_for([&] { return c.converged(); }, o.limit_ms);
  m.set(key, t);
  return t;
}

Metrics convergence(const ScenarioOptions& o) {
  Metrics m;
  header("convergence", o, m);
  Cluster c(o.cluster);
  Runner r(c, o);
  const env::TimeMs t = join(c, r, o, m, "converge_ms");
  m.set("converged", t >= 0);
  return finish(r, c, m);
}

Metrics failure(const ScenarioOptions& o) {
  Metrics m;
  header("failure", o, m);
  m.set("killed", o.kill);
  Cluster c(o.cluster);
  Runner r(c, o);
  if (join(c, r, o, m, "converge_ms") < 0) {
    m.set("detected", false);
    return finish(r, c, m);
  }
  r.advance(c.now() + 5000);  // settle: a few probe rounds after convergence
  env::SeededRandom pick(o.cluster.seed ^ 0x6b696c6cULL);
  const auto victims = pick_victims(c, pick, o.kill);
  const env::TimeMs t0 = c.now();
  for (auto v : victims) c.kill(v);
  const auto survivors = up_nodes(c);
  const env::TimeMs suspect =
      r.wait_for([&] { return c.all_see_not_alive(survivors, victims, false); }, o.limit_ms);
  const env::TimeMs dead =
      suspect < 0 ? -1
                  : r.wait_for([&] { return c.all_see_not_alive(survivors, victims, true); },
                               o.limit_ms);
  m.set("detect_suspect_ms", suspect < 0 ? -1 : suspect - t0);
  m.set("detect_dead_ms", dead < 0 ? -1 : dead - t0);
  m.set("detected", dead >= 0);
  const env::TimeMs reconv = r.wait_for([&] { return c.converged(); }, o.limit_ms);
  m.set("reconverge_ms", reconv < 0 ? -1 : reconv - t0);
  r.scan();
  return finish(r, c, m);
}

Metrics loss(const ScenarioOptions& o) {
  Metrics m;
  header("loss", o, m);
  ScenarioOptions lossless = o;
  lossless.cluster.loss = 0;  // join cleanly, then turn loss on
  Cluster c(lossless.cluster);
  Runner r(c, o);
  if (join(c, r, o, m, "converge_ms") < 0) {
    return finish(r, c, m);
  }
  c.set_loss(o.cluster.loss);
  r.advance(c.now() + o.duration_ms);
  r.scan();
  m.set("converged_at_end", c.converged());  // momentary: a suspicion in flight makes it false
  return finish(r, c, m);
}

Metrics partition(const ScenarioOptions& o) {
  Metrics m;
  header("partition", o, m);
  Cluster c(o.cluster);
  Runner r(c, o);
  if (join(c, r, o, m, "converge_ms") < 0) {
    return finish(r, c, m);
  }
  // Halves by index parity, so each side keeps some of the seeds (0 and 2 vs 1).
  std::vector<std::uint32_t> a, b;
  for (std::uint32_t i = 0; i < c.size(); ++i) (i % 2 == 0 ? a : b).push_back(i);
  const env::TimeMs t0 = c.now();
  // Verdicts across the cut are expected; a false death is one within a side.
  r.set_relevant([](std::uint32_t i, std::uint32_t j) { return i % 2 == j % 2; });
  c.partition(a);
  const env::TimeMs split = r.wait_for(
      [&] { return c.all_see_not_alive(a, b, true) && c.all_see_not_alive(b, a, true); },
      o.limit_ms);
  m.set("split_detect_ms", split < 0 ? -1 : split - t0);
  r.advance(t0 + std::max(o.duration_ms, split < 0 ? 0 : split - t0));
  const env::TimeMs t1 = c.now();
  m.set("partition_ms", t1 - t0);
  c.heal();
  const env::TimeMs healed = r.wait_for([&] { return c.converged(); }, o.limit_ms);
  m.set("healed", healed >= 0);
  m.set("heal_converge_ms", healed < 0 ? -1 : healed - t1);
  return finish(r, c, m);
}

Metrics churn(const ScenarioOptions& o) {
  Metrics m;
  header("churn", o, m);
  Cluster c(o.cluster);
  Runner r(c, o);
  if (join(c, r, o, m, "converge_ms") < 0) {
    return finish(r, c, m);
  }
  env::SeededRandom pick(o.cluster.seed ^ 0x636875726eULL);
  const env::TimeMs t0 = c.now();
  const env::TimeMs end = t0 + o.duration_ms;
  std::vector<std::pair<env::TimeMs, std::uint32_t>> down;  // (killed at, node)
  std::uint64_t kills = 0, restarts = 0;
  for (env::TimeMs t = t0; t < end; t += o.churn_interval_ms) {
    r.advance(t);
    auto victims = pick_victims(c, pick, 1);
    for (auto v : victims) {
      c.kill(v);
      down.emplace_back(c.now(), v);
      ++kills;
    }
    while (!down.empty() && down.front().first + o.churn_down_ms <= c.now()) {
      c.start_node(down.front().second);
      down.erase(down.begin());
      ++restarts;
    }
  }
  r.advance(end);
  for (auto& [at, v] : down) {
    c.start_node(v);
    ++restarts;
  }
  m.set("churn_kills", kills);
  m.set("churn_restarts", restarts);
  const env::TimeMs t1 = c.now();
  const env::TimeMs conv = r.wait_for([&] { return c.converged(); }, o.limit_ms);
  m.set("after_churn_converged", conv >= 0);
  m.set("after_churn_converge_ms", conv < 0 ? -1 : conv - t1);
  return finish(r, c, m);
}

Metrics placement_once(const ScenarioOptions& o, PlacementMode mode, const std::string& prefix,
                       std::optional<bool> balance = std::nullopt) {
  Metrics m;
  Cluster c(o.cluster);
  Runner r(c, o);
  if (join(c, r, o, m, prefix + "converge_ms") < 0) return m;
  WorkloadConfig wc = o.workload;
  wc.mode = mode;
  if (balance) wc.balance = *balance;
  wc.start_ms = c.now();
  wc.warmup_ms = c.now() + o.workload.warmup_ms;
  wc.end_ms = wc.warmup_ms + o.duration_ms;
  Workload w(c, wc, o.cluster.seed ^ 0x776f726bULL);
  w.install();
  r.advance(wc.end_ms);
  if (wc.processor_sharing) {
    // Let the jobs of the measured period end (bounded: the rest count with their slowdown so far).
    const env::TimeMs stop = wc.end_ms + wc.drain_ms;
    while (c.now() < stop && w.unfinished_measured() > 0) r.advance(std::min(stop, c.now() + 1000));
  }
  m.merge(w.results(prefix));
  Metrics common;
  common_metrics(c, common);
  for (const auto& [k, v] : common.json().items()) m.set_json(prefix + k, v);
  return m;
}

Metrics placement(const ScenarioOptions& o) {
  Metrics m;
  header("placement", o, m);
  m.set("utilization", o.workload.utilization);
  m.set("mean_runtime_ms", o.workload.mean_runtime_ms);
  if (o.placement == "compare") {
    // The report of issue 10 (docs/balancing.md): every baseline on the same job stream.
    m.merge(placement_once(o, PlacementMode::kHome, "home.", false));
    m.merge(placement_once(o, PlacementMode::kRandom, "random.", false));
    m.merge(placement_once(o, PlacementMode::kRoundRobin, "roundrobin.", false));
    m.merge(placement_once(o, PlacementMode::kPolicy, "p2c.", false));
    m.merge(placement_once(o, PlacementMode::kPolicy, "osmo.", true));
    m.merge(placement_once(o, PlacementMode::kCentral, "central.", false));
    return m;
  }
  if (o.placement == "all") {
    for (auto mode : {PlacementMode::kPolicy, PlacementMode::kRandom, PlacementMode::kHome,
                      PlacementMode::kOracle, PlacementMode::kPull}) {
      m.merge(placement_once(o, mode, std::string(to_string(mode)) + "."));
    }
    return m;
  }
  PlacementMode mode = PlacementMode::kPolicy;
  parse_placement_mode(o.placement, &mode);
  m.merge(placement_once(o, mode, ""));
  return m;
}

}  // namespace

const std::vector<std::string>& scenario_names() {
  static const std::vector<std::string> kNames = {"convergence", "failure", "loss",
                                                  "partition",   "churn",   "placement"};
  return kNames;
}

Result<Metrics> run_scenario(const std::string& name, const ScenarioOptions& options) {
  if (options.cluster.nodes < 2) return make_error("--nodes {}: need at least 2", options.cluster.nodes);
  if (options.cluster.loss < 0 || options.cluster.loss >= 1)
    return make_error("--loss {}: must be in [0, 1)", options.cluster.loss);
  if (options.step_ms <= 0) return make_error("step {} ms: must be positive", options.step_ms);
  PlacementMode mode;
  if (options.placement != "all" && options.placement != "compare" &&
      !parse_placement_mode(options.placement, &mode))
    return make_error("--placement '{}': expected policy, random, home, oracle, pull, roundrobin, "
                      "central, all or compare", options.placement);
  if ((options.placement == "central" || options.placement == "compare") &&
      !options.workload.processor_sharing)
    return make_error("--placement {} needs --ps (the central queue and the slowdowns need the "
                      "processor-sharing model)", options.placement);
  const auto wall0 = std::chrono::steady_clock::now();
  Metrics m;
  if (name == "convergence") {
    m = convergence(options);
  } else if (name == "failure") {
    m = failure(options);
  } else if (name == "loss") {
    m = loss(options);
  } else if (name == "partition") {
    m = partition(options);
  } else if (name == "churn") {
    m = churn(options);
  } else if (name == "placement") {
    m = placement(options);
  } else {
    return make_error("unknown scenario '{}' (expected convergence, failure, loss, partition, "
                      "churn or placement)",
                      name);
  }
  if (options.timing) {
    const auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - wall0)
                             .count();
    m.set("wall_ms", static_cast<std::int64_t>(wall_ms));
  }
  return m;
}

}  // namespace osmo::sim
