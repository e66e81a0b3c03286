// SPDX-License-Identifier: GPL-2.0-or-later
// The simulated workload (see workload.hpp).
#include "sim/workload.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "cluster_view/decisions.hpp"
#include "cluster_view/local_load.hpp"

namespace osmo::sim {
namespace {

// A job's id is in exactly one node's list while it runs; anything else is a simulator bug, and
// continuing would silently corrupt every load figure.
void remove_job(std::vector<std::uint64_t>& list, std::uint64_t id) {
  auto it = std::find(list.begin(), list.end(), id);
  if (it == list.end()) {
    std::fprintf(stderr, "osmo-sim: internal error: job %llu not on its node\n",
                 static_cast<unsigned long long>(id));
    std::abort();
  }
  list.erase(it);
}

}  // namespace

const char* to_string(PlacementMode m) {
  switch (m) {
    case PlacementMode::kPolicy: return "policy";
    case PlacementMode::kRandom: return "random";
    case PlacementMode::kHome: return "home";
    case PlacementMode::kOracle: return "oracle";
    case PlacementMode::kPull: return "pull";
    case PlacementMode::kRoundRobin: return "roundrobin";
    case PlacementMode::kCentral: return "central";
  }
  return "?";
}

bool parse_placement_mode(std::string_view text, PlacementMode* out) {
  for (auto m : {PlacementMode::kPolicy, PlacementMode::kRandom, PlacementMode::kHome,
                 PlacementMode::kOracle, PlacementMode::kPull, PlacementMode::kRoundRobin,
                 PlacementMode::kCentral}) {
    if (text == to_string(m)) {
      *out = m;
      return true;
    }
  }
  return false;
}

Workload::Workload(Cluster& cluster, WorkloadConfig config, std::uint64_t seed)
    : cluster_(cluster),
      config_(std::move(config)),
      arrivals_(seed),
      random_(seed ^ 0x706c616365ULL),
      nodes_(cluster.size()) {
  for (std::uint32_t i = 0; i < cluster_.size(); ++i) {
    const auto& s = cluster_.node(i);
    total_cap_ += policy::capacity(s.cpus, s.speed);
  }
  const double mean_rt = static_cast<double>(std::max<env::TimeMs>(config_.mean_runtime_ms, 1));
  if (config_.demand == WorkloadConfig::Demand::kPareto) {
    // Bounded Pareto on [k, r k]: choose k so that the mean is mean_rt.
    const double a = config_.pareto_alpha, r = std::max(config_.pareto_ratio, 1.0001);
    double unit_mean;  // the mean for k = 1
    if (std::abs(a - 1.0) < 1e-9) {
      unit_mean = r * std::log(r) / (r - 1);
    } else {
      unit_mean = a / (a - 1) * (1 - std::pow(r, 1 - a)) / (1 - std::pow(r, -a));
    }
    pareto_min_ms_ = mean_rt / unit_mean;
  }
  // Little's law: jobs in the system = arrival rate * mean run time = utilisation * capacity.
  arrival_rate_per_ms_ = config_.utilization * total_cap_ / mean_rt;
}

void Workload::install() {
  cluster_.set_workload_handler([this](const Event& e) { on_event(e); });
  auto& q = cluster_.queue();
  sample_all();  // every node knows (and gossips) its load before the first job arrives
  q.push(cluster_.now() + config_.sample_ms, EventKind::kLoadSample);
  q.push(std::max(cluster_.now(), config_.warmup_ms), EventKind::kMeasure);
  if (config_.balance) q.push(cluster_.now() + config_.balance_ms, EventKind::kBalance);
  for (const auto& j : config_.initial_jobs)
    if (j.node < cluster_.size() && cluster_.node(j.node).up)
      start_job(j.node, j.runtime_ms, j.node, config_.job_mem_mb, cluster_.now());
  if (arrival_rate_per_ms_ > 0) {
    q.push(std::max(cluster_.now(), config_.start_ms), EventKind::kJobArrival);
  }
}

void Workload::on_event(const Event& e) {
  auto& q = cluster_.queue();
  switch (e.kind) {
    case EventKind::kLoadSample:
      sample_all();
      q.push(cluster_.now() + config_.sample_ms, EventKind::kLoadSample);
      return;
    case EventKind::kMeasure:
      measure();
      q.push(cluster_.now() + config_.measure_ms, EventKind::kMeasure);
      return;
    case EventKind::kBalance:
      balance_all();
      q.push(cluster_.now() + config_.balance_ms, EventKind::kBalance);
      return;
    case EventKind::kJobArrival:
      arrival();
      schedule_next_arrival();
      return;
    case EventKind::kJobFinish:
      finish(e.arg);
      return;
    case EventKind::kNodeFinish:
      node_finish(e.node, e.arg);
      return;
    case EventKind::kArrive:
      arrive(e.arg);
      return;
    default:
      return;
  }
}

void Workload::schedule_next_arrival() {
  // Exponential inter-arrival times; 1 - unit() is in (0, 1] so the log is finite.
  const double gap = -std::log(1.0 - arrivals_.unit()) / arrival_rate_per_ms_;
  const env::TimeMs next = cluster_.now() + std::max<env::TimeMs>(1, std::llround(gap));
  if (next <= config_.end_ms) cluster_.queue().push(next, EventKind::kJobArrival);
}

void Workload::sync_node(std::uint32_t i) {
  NodeState& n = nodes_[i];
  const auto& s = cluster_.node(i);
  if (n.generation == s.generation) return;
  // The node was killed (and maybe restarted) since we last looked: its jobs died with it.
  for (auto id : n.jobs) {
    if (!jobs_[id].done) {
      jobs_[id].done = true;
      ++lost_;
      if (jobs_[id].measured) ++measured_done_;  // lost: no slowdown
    }
  }
  n.jobs.clear();
  ++n.epoch;  // its pending finish event is stale
  n.copies = 0;
  n.updated_ms = cluster_.now();
  n.estimator = policy::LoadEstimator();
  n.ledger = policy::PlacementLedger();
  n.last_migration_out_ms.reset();
  n.book = policy::ReservationBook();
  n.departures = policy::DepartureLog();
  n.generation = s.generation;
}

void Workload::sample_all() {
  const env::TimeMs now = cluster_.now();
  for (std::uint32_t i = 0; i < cluster_.size(); ++i) {
    sync_node(i);
    auto& s = cluster_.node(i);
    if (!s.up) continue;
    NodeState& n = nodes_[i];
    cluster_view::LocalSample sample;
    sample.runnable = runnable(i);
    sample.cpus = s.cpus;
    sample.speed = s.speed;
    sample.mem_total_mb = s.mem_total_mb;
    const std::uint64_t used = node_mem_used(i);
    sample.mem_free_mb = used < s.mem_total_mb ? s.mem_total_mb - used : 0;
    sample.jobs = static_cast<std::uint32_t>(n.jobs.size());
    n.published = cluster_view::load_info_from_sample(sample, now, n.estimator);
    n.published_ms = now;
    s.node->set_local_load(n.published);
    if (i % 64 == 0) n.ledger.prune(now);
  }
}

env::TimeMs Workload::draw_runtime_ms() {
  const double u = arrivals_.unit();
  if (config_.demand == WorkloadConfig::Demand::kPareto) {
    // Inverse CDF of the bounded Pareto law on [k, r k].
    const double a = config_.pareto_alpha, r = std::max(config_.pareto_ratio, 1.0001);
    const double x = pareto_min_ms_ / std::pow(1 - u * (1 - std::pow(r, -a)), 1 / a);
    return std::max<env::TimeMs>(1, std::llround(x));
  }
  const double mean_rt = static_cast<double>(config_.mean_runtime_ms);
  return std::max<env::TimeMs>(1, std::llround(-std::log(1.0 - u) * mean_rt));
}

std::uint64_t Workload::draw_mem_mb() {
  if (!config_.heavy_memory) return config_.job_mem_mb;
  // Bounded Pareto, alpha 1.2, 32 MB .. 8 GB: most jobs small, a few huge (mean ~140 MB).
  const double a = 1.2, k = 32, r = 256;
  const double x = k / std::pow(1 - arrivals_.unit() * (1 - std::pow(r, -a)), 1 / a);
  return static_cast<std::uint64_t>(std::llround(x));
}

void Workload::arrival() {
  ++submitted_;
  const auto runtime = draw_runtime_ms();
  const std::uint64_t mem = draw_mem_mb();
  // The submitting (home) node: a random up node.
  const auto n = static_cast<std::uint64_t>(cluster_.size());
  for (int attempt = 0; attempt < 64; ++attempt) {
    const auto home = static_cast<std::uint32_t>(arrivals_.uniform(n));
    sync_node(home);
    if (cluster_.node(home).up) {
      place_and_start(home, runtime, mem);
      return;
    }
  }
  ++placement_failures_;  // (almost) the whole cluster is down
}

void Workload::place_and_start(std::uint32_t home, env::TimeMs runtime, std::uint64_t mem) {
  const env::TimeMs now = cluster_.now();
  std::uint32_t target = home;
  switch (config_.mode) {
    case PlacementMode::kHome:
      break;
    case PlacementMode::kCentral: {
      // The omniscient central queue: not a placement on a view but one cluster-wide FIFO.
      Job j;
      j.home = home;
      j.work_ms = static_cast<double>(runtime);
      j.remaining_ms = j.work_ms;
      j.mem_mb = mem;
      j.submit_ms = now;
      j.measured = now >= config_.warmup_ms;
      if (j.measured) ++measured_jobs_;
      jobs_.push_back(j);
      const std::uint64_t id = jobs_.size() - 1;
      if (!central_start(id)) {
        central_queue_.push_back(id);
        ++central_queued_;
      }
      return;
    }
    case PlacementMode::kRoundRobin: {
      std::vector<std::uint32_t> alive;
      for (const auto& m : cluster_.node(home).node->members()) {
        if (m.state != gossip::MemberState::kAlive) continue;
        const int j = cluster_.index_of(m.name);
        if (j >= 0) alive.push_back(static_cast<std::uint32_t>(j));
      }
      // Each node's cursor starts at its own index, or every node would send its k-th job to
      // the same member.
      if (!alive.empty()) target = alive[(home + nodes_[home].rr_next++) % alive.size()];
      break;
    }
    case PlacementMode::kOracle: {
      double best = 0;
      bool have = false;
      for (std::uint32_t i = 0; i < cluster_.size(); ++i) {
        sync_node(i);
        const auto& s = cluster_.node(i);
        if (!s.up) continue;
        const double after =
            (static_cast<double>(nodes_[i].jobs.size()) + 1) / policy::capacity(s.cpus, s.speed);
        if (!have || after < best) {
          best = after;
          target = i;
          have = true;
        }
      }
      break;
    }
    case PlacementMode::kRandom: {
      std::vector<std::uint32_t> alive;
      for (const auto& m : cluster_.node(home).node->members()) {
        if (m.state != gossip::MemberState::kAlive) continue;
        const int j = cluster_.index_of(m.name);
        if (j >= 0) alive.push_back(static_cast<std::uint32_t>(j));
      }
      if (!alive.empty()) target = alive[random_.uniform(alive.size())];
      break;
    }
    case PlacementMode::kPull: {
      const auto view = cluster_.node(home).node->members();
      std::vector<std::uint32_t> alive;
      std::vector<double> prefix;
      double total = 0;
      for (const auto& m : view) {
        if (m.is_self || m.state != gossip::MemberState::kAlive) continue;
        const int j = cluster_.index_of(m.name);
        if (j < 0) continue;
        const auto& t = cluster_.node(static_cast<std::uint32_t>(j));
        alive.push_back(static_cast<std::uint32_t>(j));
        prefix.push_back(total += policy::capacity(t.cpus, t.speed));
      }
      std::vector<gossip::MemberView> asked = {view.front()};  // self first
      const auto d = static_cast<std::size_t>(std::max(config_.placement.choices, 1));
      std::vector<bool> taken(alive.size(), false);
      for (std::size_t attempt = 0; asked.size() < d + 1 && attempt < 8 * d && total > 0;
           ++attempt) {
        auto i = static_cast<std::size_t>(
            std::upper_bound(prefix.begin(), prefix.end(), random_.unit() * total) -
            prefix.begin());
        if (i >= alive.size()) i = alive.size() - 1;
        if (taken[i]) continue;
        taken[i] = true;
        const std::uint32_t j = alive[i];
        pull_datagrams_ += 2;
        sync_node(j);
        if (!cluster_.node(j).up) continue;  // no reply
        gossip::MemberView v;
        v.name = cluster_.node(j).name;
        v.load = nodes_[j].published;
        v.load_age_ms = now - nodes_[j].published_ms + cluster_.config().latency_min_ms +
                        cluster_.config().latency_max_ms;
        asked.push_back(std::move(v));
      }
      policy::PlacementRequest req;
      req.mem_mb = mem;
      auto p = cluster_view::place_job(req, asked, nodes_[home].ledger, now, random_,
                                       config_.placement);
      if (!p.ok()) {
        if (first_placement_error_.empty()) first_placement_error_ = p.error().str();
        ++placement_failures_;
        return;
      }
      decision_figures_ += static_cast<std::uint64_t>(p->remote_compared);
      decision_age_sum_ms_ += static_cast<double>(p->remote_age_sum_ms);
      decision_age_max_ms_ = std::max(decision_age_max_ms_, p->remote_age_max_ms);
      const int j = cluster_.index_of(p->node);
      if (j >= 0) target = static_cast<std::uint32_t>(j);
      break;
    }
    case PlacementMode::kPolicy: {
      const auto view = cluster_.node(home).node->members();
      ++view_samples_;
      for (const auto& m : view) {
        if (m.is_self || m.state != gossip::MemberState::kAlive || !m.load) continue;
        ++view_entries_;
        view_usable_ += config_.placement.staleness.usable(m.load_age_ms);
        view_age_sum_ms_ += static_cast<double>(m.load_age_ms);
        view_fresh_1s_ += m.load_age_ms <= 1000;
        view_age_max_ms_ = std::max(view_age_max_ms_, m.load_age_ms);
      }
      policy::PlacementRequest req;
      req.mem_mb = mem;
      auto p = cluster_view::place_job(req, view, nodes_[home].ledger, now, random_,
                                       config_.placement);
      if (!p.ok()) {
        // Refused, as the daemon answers `no_node` (cluster_view/decisions.hpp): not started.
        if (first_placement_error_.empty()) first_placement_error_ = p.error().str();
        ++placement_failures_;
        return;
      }
      decision_figures_ += static_cast<std::uint64_t>(p->remote_compared);
      decision_age_sum_ms_ += static_cast<double>(p->remote_age_sum_ms);
      decision_age_max_ms_ = std::max(decision_age_max_ms_, p->remote_age_max_ms);
      const int j = cluster_.index_of(p->node);
      if (j >= 0) target = static_cast<std::uint32_t>(j);
      break;
    }
  }
  sync_node(target);
  if (!cluster_.node(target).up) {
    ++start_misses_;  // the view said alive, the node was gone: start at home instead
    target = home;
  }
  if (target == home) ++placed_home_;
  start_job(target, runtime, home, mem, now);
}

void Workload::start_job(std::uint32_t node, env::TimeMs runtime_ms, std::uint32_t home,
                         std::uint64_t mem_mb, env::TimeMs submit_ms) {
  const env::TimeMs now = cluster_.now();
  Job j;
  j.node = node;
  j.home = home;
  j.node_generation = cluster_.node(node).generation;
  j.start_ms = now;
  j.arrived_ms = now;
  j.mem_mb = mem_mb;
  j.submit_ms = submit_ms;
  j.work_ms = static_cast<double>(runtime_ms);
  j.remaining_ms = j.work_ms;
  j.remaining_at_arrival_ms = j.work_ms;
  j.measured = config_.processor_sharing && submit_ms >= config_.warmup_ms;
  if (j.measured) ++measured_jobs_;
  jobs_.push_back(j);
  const std::uint64_t id = jobs_.size() - 1;
  if (config_.processor_sharing) {
    advance(node);
    nodes_[node].jobs.push_back(id);
    reschedule(node);
  } else {
    nodes_[node].jobs.push_back(id);
    cluster_.queue().push(now + runtime_ms, EventKind::kJobFinish, node, id);
  }
  cluster_.trace().add(static_cast<std::uint64_t>(now));
  cluster_.trace().add(static_cast<std::uint64_t>(node));
}

void Workload::finish(std::uint64_t job_id) {
  Job& j = jobs_[job_id];
  if (j.done) return;  // lost with its node
  sync_node(j.node);
  if (j.done) return;
  j.done = true;
  ++finished_;
  remove_job(nodes_[j.node].jobs, job_id);
}

void Workload::balance_all() {
  const env::TimeMs now = cluster_.now();
  for (std::uint32_t i = 0; i < cluster_.size(); ++i) {
    sync_node(i);
    auto& s = cluster_.node(i);
    NodeState& n = nodes_[i];
    if (!s.up || n.jobs.empty()) continue;
    policy::LocalState local;
    local.name = s.name;
    local.runnable = n.estimator.smoothed();
    local.cpus = s.cpus;
    local.speed = s.speed;
    local.mem_total_mb = s.mem_total_mb;
    const std::uint64_t used = node_mem_used(i);
    local.mem_free_mb = used < s.mem_total_mb ? s.mem_total_mb - used : 0;
    local.last_migration_out_ms = n.last_migration_out_ms;
    n.departures.prune(now);
    local.departed_runnable = n.departures.still_counted(now);
    std::vector<policy::JobInfo> infos;
    infos.reserve(n.jobs.size());
    if (config_.processor_sharing) advance(i);
    for (auto id : n.jobs) {
      const Job& j = jobs_[id];
      policy::JobInfo ji;
      ji.id = id;
      ji.age_ms = now - j.start_ms;
      ji.residence_ms = now - j.arrived_ms;
      ji.mem_mb = j.mem_mb;
      // As the daemon sees it: the CPU time the process used on this node.
      if (config_.processor_sharing)
        ji.cpu_used_ms = std::llround((j.remaining_at_arrival_ms - j.remaining_ms) / s.speed);
      ji.migrations = j.migrations;
      ji.home = cluster_.node(j.home).name;
      ji.last_attempt_ms = j.last_attempt_ms;
      infos.push_back(ji);
    }
    auto move = cluster_view::decide_move(local, s.node->members(), infos, n.ledger, now, random_,
                                          config_.balancer);
    if (!move) continue;
    const int t = cluster_.index_of(move->target);
    if (t < 0) continue;
    const auto target = static_cast<std::uint32_t>(t);
    sync_node(target);
    Job& j = jobs_[move->job_id];
    if (!cluster_.node(target).up) {
      ++start_misses_;  // no answer to the reservation: the job keeps running here
      j.last_attempt_ms = now;
      continue;
    }
    // The target's say, on its own view and promises (balance.reserve in the daemon).
    NodeState& tn = nodes_[target];
    const auto offer = cluster_view::offer_for(*move, std::to_string(move->job_id), s.name);
    const auto verdict = cluster_view::judge_offer(offer, cluster_.node(target).node->members(), tn.book,
                                                   now, config_.balancer, tn.departures.still_counted(now));
    if (config_.target_reserves && !verdict.accepted) {
      ++balance_refusals_;
      j.last_attempt_ms = now;
      continue;
    }
    tn.book.reserve(offer, now);
    if (!config_.processor_sharing) tn.book.arrived(offer.job, now);  // an instantaneous move
    n.ledger.record(move->target, now, move->cpu_share, j.mem_mb);
    n.last_migration_out_ms = now;
    n.departures.record(now, move->cpu_share);
    if (j.previous_node && *j.previous_node == target) ++returns_;
    j.previous_node = i;
    remove_job(n.jobs, move->job_id);
    j.node = target;
    j.node_generation = cluster_.node(target).generation;
    j.arrived_ms = now;
    ++j.migrations;
    max_job_migrations_ = std::max(max_job_migrations_, j.migrations);
    last_migration_ms_ = now;
    if (config_.processor_sharing) {
      // Stop and copy: frozen while its memory crosses the link, one copying task at each end.
      advance(target);
      j.in_flight = true;
      ++n.copies;
      ++tn.copies;
      reschedule(i);
      reschedule(target);
      const auto copy_ms = config_.migration_setup_ms +
                           static_cast<env::TimeMs>(std::llround(
                               static_cast<double>(j.mem_mb) / std::max(config_.link_mb_per_s, 1e-3) * 1000));
      migration_busy_ms_ += static_cast<double>(copy_ms);
      cluster_.queue().push(now + copy_ms, EventKind::kArrive, target, move->job_id);
    } else {
      nodes_[target].jobs.push_back(move->job_id);
    }
    ++migrations_;
    balance_target_age_sum_ms_ += static_cast<double>(move->target_load_age_ms);
    if (move->reason == policy::MoveReason::kMemory) ++memory_migrations_;
    cluster_.trace().add(static_cast<std::uint64_t>(now));
    cluster_.trace().add(move->job_id);
    cluster_.trace().add(static_cast<std::uint64_t>(target));
  }
}

double Workload::runnable(std::uint32_t i) const {
  return static_cast<double>(nodes_[i].jobs.size() + static_cast<std::size_t>(nodes_[i].copies));
}

std::uint64_t Workload::node_mem_used(std::uint32_t i) const {
  if (!config_.processor_sharing) return nodes_[i].jobs.size() * config_.job_mem_mb;
  std::uint64_t used = 0;
  for (auto id : nodes_[i].jobs) used += jobs_[id].mem_mb;
  return used;
}

double Workload::rate_per_job(std::uint32_t i) const {
  const auto& s = cluster_.node(i);
  const double r = runnable(i);
  return s.speed * (r <= s.cpus ? 1.0 : s.cpus / r);
}

void Workload::advance(std::uint32_t i) {
  NodeState& n = nodes_[i];
  const env::TimeMs now = cluster_.now();
  if (now > n.updated_ms && !n.jobs.empty()) {
    const double done = rate_per_job(i) * static_cast<double>(now - n.updated_ms);
    for (auto id : n.jobs) jobs_[id].remaining_ms -= done;
  }
  n.updated_ms = now;
}

void Workload::reschedule(std::uint32_t i) {
  NodeState& n = nodes_[i];
  ++n.epoch;
  if (n.jobs.empty()) return;
  double least = jobs_[n.jobs.front()].remaining_ms;
  for (auto id : n.jobs) least = std::min(least, jobs_[id].remaining_ms);
  const double rate = rate_per_job(i);
  const auto in = static_cast<env::TimeMs>(std::ceil(std::max(least, 0.0) / std::max(rate, 1e-9)));
  cluster_.queue().push(cluster_.now() + std::max<env::TimeMs>(in, 0), EventKind::kNodeFinish, i, n.epoch);
}

void Workload::node_finish(std::uint32_t i, std::uint64_t epoch) {
  sync_node(i);
  NodeState& n = nodes_[i];
  if (epoch != n.epoch || !cluster_.node(i).up) return;
  advance(i);
  std::vector<std::uint64_t> ended;
  for (auto id : n.jobs)
    if (jobs_[id].remaining_ms <= 1e-6) ended.push_back(id);
  for (auto id : ended) {
    remove_job(n.jobs, id);
    jobs_[id].done = true;
    ++finished_;
    job_done(id);
  }
  reschedule(i);
  if (config_.mode == PlacementMode::kCentral && !ended.empty()) central_dispatch();
}

void Workload::job_done(std::uint64_t id) {
  const Job& j = jobs_[id];
  if (!j.measured) return;
  ++measured_done_;
  const double response = static_cast<double>(cluster_.now() - j.submit_ms);
  const double sd = response / std::max(j.work_ms, 1.0);
  slowdown_sum_ += sd;
  slowdown_max_ = std::max(slowdown_max_, sd);
  response_sum_ms_ += response;
  slowdowns_.push_back(sd);
}

void Workload::arrive(std::uint64_t id) {
  Job& j = jobs_[id];
  const std::uint32_t target = j.node;
  j.in_flight = false;
  if (j.previous_node) {
    const std::uint32_t src = *j.previous_node;
    sync_node(src);
    if (nodes_[src].copies > 0) {
      advance(src);
      --nodes_[src].copies;
      reschedule(src);
    }
  }
  sync_node(target);
  if (j.done) return;
  if (!cluster_.node(target).up || j.node_generation != cluster_.node(target).generation) {
    j.done = true;  // its target died during the copy
    ++lost_;
    if (j.measured) ++measured_done_;
    return;
  }
  NodeState& tn = nodes_[target];
  advance(target);
  if (tn.copies > 0) --tn.copies;
  const env::TimeMs now = cluster_.now();
  j.arrived_ms = now;
  j.remaining_at_arrival_ms = j.remaining_ms;
  tn.book.arrived(std::to_string(id), now);
  tn.jobs.push_back(id);
  reschedule(target);
}

bool Workload::central_start(std::uint64_t id) {
  // The fastest node with a free CPU (ties: the lowest index); all-knowing, instantaneous.
  int best = -1;
  for (std::uint32_t i = 0; i < cluster_.size(); ++i) {
    sync_node(i);
    const auto& s = cluster_.node(i);
    if (!s.up || runnable(i) + 1 > s.cpus + 1e-9) continue;
    if (s.mem_total_mb < node_mem_used(i) + jobs_[id].mem_mb) continue;
    if (best < 0 || s.speed > cluster_.node(static_cast<std::uint32_t>(best)).speed) best = static_cast<int>(i);
  }
  if (best < 0) return false;
  const auto node = static_cast<std::uint32_t>(best);
  Job& j = jobs_[id];
  const env::TimeMs now = cluster_.now();
  j.node = node;
  j.node_generation = cluster_.node(node).generation;
  j.start_ms = now;
  j.arrived_ms = now;
  j.remaining_at_arrival_ms = j.remaining_ms;
  if (node == j.home) ++placed_home_;
  advance(node);
  nodes_[node].jobs.push_back(id);
  reschedule(node);
  cluster_.trace().add(static_cast<std::uint64_t>(now));
  cluster_.trace().add(static_cast<std::uint64_t>(node));
  return true;
}

void Workload::central_dispatch() {
  while (central_head_ < central_queue_.size() && central_start(central_queue_[central_head_]))
    ++central_head_;
}

std::vector<std::size_t> Workload::jobs_per_node() const {
  std::vector<std::size_t> out;
  out.reserve(nodes_.size());
  for (const auto& n : nodes_) out.push_back(n.jobs.size());
  return out;
}

void Workload::measure() {
  double cap = 0, running = 0, max_load = 0, excess = 0;
  std::vector<double> loads;
  loads.reserve(cluster_.size());
  for (std::uint32_t i = 0; i < cluster_.size(); ++i) {
    sync_node(i);
    const auto& s = cluster_.node(i);
    if (!s.up) continue;
    const double c = policy::capacity(s.cpus, s.speed);
    const double r = static_cast<double>(nodes_[i].jobs.size());
    cap += c;
    running += r;
    loads.push_back(r / c);
    max_load = std::max(max_load, r / c);
    excess += std::max(0.0, r - c);
  }
  if (loads.empty() || cap <= 0) return;
  if (measurements_ == 0) {  // traffic is measured over the same period as the load spread
    measured_from_ms_ = cluster_.now();
    datagrams_at_start_ = cluster_.datagrams_sent();
    bytes_at_start_ = cluster_.bytes_sent();
    pull_at_start_ = pull_datagrams_;
  }
  const double ideal = running / cap;
  double var = 0;
  for (double l : loads) var += (l - ideal) * (l - ideal);
  ++measurements_;
  sum_ideal_ += ideal;
  sum_max_ += max_load;
  peak_max_ = std::max(peak_max_, max_load);
  sum_stddev_ += std::sqrt(var / static_cast<double>(loads.size()));
  sum_excess_ += excess;
  sum_running_ += running;
}

Metrics Workload::results(const std::string& prefix) const {
  Metrics m;
  const double k = measurements_ > 0 ? static_cast<double>(measurements_) : 1.0;
  m.set(prefix + "placement", to_string(config_.mode));
  m.set(prefix + "balance", config_.balance);
  m.set(prefix + "capacity", total_cap_);
  m.set(prefix + "jobs_submitted", submitted_);
  m.set(prefix + "jobs_finished", finished_);
  m.set(prefix + "jobs_lost", lost_);
  m.set(prefix + "placed_home_fraction",
        submitted_ ? static_cast<double>(placed_home_) / static_cast<double>(submitted_) : 0.0);
  m.set(prefix + "placement_failures", placement_failures_);
  if (!first_placement_error_.empty())
    m.set(prefix + "placement_first_error", first_placement_error_);
  m.set(prefix + "start_misses", start_misses_);
  m.set(prefix + "migrations", migrations_);
  m.set(prefix + "memory_migrations", memory_migrations_);
  if (config_.balance) {
    m.set(prefix + "balance_refusals", balance_refusals_);
    m.set(prefix + "balance_returns", returns_);
    m.set(prefix + "max_job_migrations", static_cast<std::int64_t>(max_job_migrations_));
    m.set(prefix + "last_migration_ms", static_cast<std::int64_t>(last_migration_ms_));
  }
  m.set(prefix + "measurements", measurements_);
  if (view_entries_ > 0) {  // the policy mode's view of the cluster at placement time
    const double e = static_cast<double>(view_entries_);
    const double v = static_cast<double>(view_samples_);
    m.set(prefix + "view_load_age_mean_ms", view_age_sum_ms_ / e);
    m.set(prefix + "view_load_age_max_ms", view_age_max_ms_);
    m.set(prefix + "view_usable_fraction", static_cast<double>(view_usable_) / e);
    m.set(prefix + "view_members_mean", e / v);
    m.set(prefix + "view_fresh_1s_mean", static_cast<double>(view_fresh_1s_) / v);
  }
  if (decision_figures_ > 0) {  // the figures placements compared (policy and pull modes)
    m.set(prefix + "decision_load_age_mean_ms",
          decision_age_sum_ms_ / static_cast<double>(decision_figures_));
    m.set(prefix + "decision_load_age_max_ms", decision_age_max_ms_);
    m.set(prefix + "decision_figures", decision_figures_);
  }
  if (migrations_ > 0)
    m.set(prefix + "balance_target_age_mean_ms",
          balance_target_age_sum_ms_ / static_cast<double>(migrations_));
  const double node_s = static_cast<double>(cluster_.size()) *
                        static_cast<double>(cluster_.now() - measured_from_ms_) / 1000.0;
  if (measurements_ > 0 && node_s > 0) {
    m.set(prefix + "measured_datagrams_per_node_s",
          static_cast<double>(cluster_.datagrams_sent() - datagrams_at_start_) / node_s);
    m.set(prefix + "measured_bytes_per_node_s",
          static_cast<double>(cluster_.bytes_sent() - bytes_at_start_) / node_s);
    if (config_.mode == PlacementMode::kPull)
      m.set(prefix + "pull_datagrams_per_node_s",
            static_cast<double>(pull_datagrams_ - pull_at_start_) / node_s);
  }
  if (config_.processor_sharing) {
    // Jobs submitted in the measured period; those still running count with their slowdown so
    // far (a lower bound), so a placement that leaves more long jobs unfinished is not flattered.
    std::vector<double> all = slowdowns_;
    double sum = slowdown_sum_;
    std::uint64_t open = 0;
    for (const auto& j : jobs_) {
      if (!j.measured || j.done) continue;
      const double sd = static_cast<double>(cluster_.now() - j.submit_ms) / std::max(j.work_ms, 1.0);
      all.push_back(sd);
      sum += sd;
      ++open;
    }
    m.set(prefix + "jobs_measured", static_cast<std::uint64_t>(all.size()));
    m.set(prefix + "jobs_unfinished", open);
    if (!all.empty()) {
      std::sort(all.begin(), all.end());
      m.set(prefix + "slowdown_mean", sum / static_cast<double>(all.size()));
      m.set(prefix + "slowdown_p50", all[all.size() / 2]);
      m.set(prefix + "slowdown_p99", all[std::min(all.size() - 1, all.size() * 99 / 100)]);
      m.set(prefix + "slowdown_max", all.back());
    }
    if (measured_done_ > 0)
      m.set(prefix + "response_mean_ms", response_sum_ms_ / static_cast<double>(slowdowns_.size()));
    if (migrations_ > 0) m.set(prefix + "migration_copy_mean_ms", migration_busy_ms_ / static_cast<double>(migrations_));
    if (config_.mode == PlacementMode::kCentral) m.set(prefix + "central_queued", central_queued_);
    if (config_.demand == WorkloadConfig::Demand::kPareto) m.set(prefix + "pareto_min_ms", pareto_min_ms_);
  }
  m.set(prefix + "load_ideal_mean", sum_ideal_ / k);
  m.set(prefix + "load_max_mean", sum_max_ / k);
  m.set(prefix + "load_max_peak", peak_max_);
  m.set(prefix + "load_stddev_mean", sum_stddev_ / k);
  // Share of running jobs beyond their node's capacity: jobs waiting for a CPU that another node
  // had free (when the ideal is below 1, a perfect placement keeps this at 0).
  m.set(prefix + "excess_fraction", sum_running_ > 0 ? sum_excess_ / sum_running_ : 0.0);
  return m;
}

}  // namespace osmo::sim
