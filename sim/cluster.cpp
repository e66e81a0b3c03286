// SPDX-License-Identifier: GPL-2.0-or-later
// The simulated cluster: node lifecycle, the event loop and cluster-wide observations
// (see cluster.hpp).
#include "sim/cluster.hpp"

#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>

#include "sim/network.hpp"

namespace osmo::sim {

namespace {

// Every node's random stream derives from the run's seed, the node and its incarnation, so that
// restarting one node does not shift the random choices of any other.
std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void add_counters(gossip::Counters& to, const gossip::Counters& c) {
  to.received += c.received;
  to.sent += c.sent;
  to.dropped_bad_mac += c.dropped_bad_mac;
  to.dropped_bad_version += c.dropped_bad_version;
  to.dropped_malformed += c.dropped_malformed;
  to.dropped_foreign += c.dropped_foreign;
  to.dropped_replay += c.dropped_replay;
  to.dropped_encryption_mismatch += c.dropped_encryption_mismatch;
  to.probes_sent += c.probes_sent;
  to.indirect_probes += c.indirect_probes;
  to.suspicions += c.suspicions;
  to.refutations += c.refutations;
}

}  // namespace

Cluster::Cluster(ClusterConfig config)
    : config_(std::move(config)), random_(mix(config_.seed, 0x636c7573746572ULL)) {
  Logger::set_level(config_.log_level);
  net_ = std::make_unique<Network>(clock_, mix(config_.seed, 0x6e6574ULL));
  set_loss(config_.loss);

  static constexpr double kCpus[] = {1, 2, 4, 8};
  static constexpr double kSpeeds[] = {0.75, 1.0, 1.5};
  const auto n = static_cast<std::uint32_t>(std::max(config_.nodes, 1));
  nodes_.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    SimNode& s = nodes_[i];
    s.index = i;
    s.name = fmt::format("n{:04}", i);
    // 10.x.y.z addresses: up to 16M nodes, unique and readable.
    s.addr = env::Endpoint{fmt::format("10.{}.{}.{}", (i + 1) >> 16, ((i + 1) >> 8) & 255,
                                       (i + 1) & 255),
                           7946};
    if (config_.heterogeneous) {
      s.cpus = kCpus[random_.uniform(4)];
      s.speed = kSpeeds[random_.uniform(3)];
    }
    s.mem_total_mb = static_cast<std::uint64_t>(s.cpus) * 4096;
    by_name_.emplace(s.name, i);
  }
}

Cluster::~Cluster() = default;

void Cluster::start_all() {
  const auto seeds = static_cast<std::uint32_t>(std::max(config_.seed_nodes, 1));
  for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
    const env::TimeMs when =
        i < seeds ? now()
                  : now() + static_cast<env::TimeMs>(random_.uniform(
                                static_cast<std::uint64_t>(std::max<env::TimeMs>(
                                    config_.join_spread_ms, 1))));
    at(when, [this, i] { start_node(i); });
  }
}

void Cluster::start_node(std::uint32_t i) {
  SimNode& s = nodes_[i];
  if (s.up) return;
  ++s.generation;
  gossip::Config gc = config_.gossip;
  gc.node_name = s.name;
  gc.advertise = s.addr;
  gc.seeds.clear();
  const auto seeds = static_cast<std::uint32_t>(std::max(config_.seed_nodes, 1));
  for (std::uint32_t k = 0; k < seeds && k < nodes_.size(); ++k) gc.seeds.push_back(nodes_[k].addr);
  gc.key.assign(32, 0);
  for (std::size_t k = 0; k < gc.key.size(); ++k)
    gc.key[k] = static_cast<std::uint8_t>(mix(config_.seed, k) & 0xff);
  s.random = std::make_unique<env::SeededRandom>(mix(mix(config_.seed, i + 1), s.generation));
  s.nonces = std::make_unique<env::SeededRandom>(mix(mix(config_.seed ^ 0x6e6f6e6365ULL, i + 1), s.generation));
  const env::ManualClock* clock = &clock_;
  // The machine comes up with a fresh socket: datagrams sent to the old one were lost with it.
  env::Transport& transport = net_->add_endpoint(
      s.addr, [this, i](const env::Endpoint& from, std::span<const std::uint8_t> d) {
        deliver(i, from, d);
      });
  // One virtual timeline is every node's wall clock too (send times in the envelopes).
  s.node = std::make_unique<gossip::Node>(std::move(gc), clock_, transport,
                                          *s.random,
                                          Logger(s.name, "gossip", [clock] { return clock->now_ms(); }),
                                          nullptr, s.nonces.get());
  s.up = true;
  s.up_since_ms = now();
  s.node->start();
  trace_.add(static_cast<std::uint64_t>(now()));
  trace_.add(std::string_view("start"));
  trace_.add(static_cast<std::uint64_t>(i));
  // Ticks start at a random phase so that nodes do not act in lockstep.
  const auto tick = static_cast<std::uint64_t>(std::max<env::TimeMs>(config_.tick_ms, 1));
  queue_.push(now() + 1 + static_cast<env::TimeMs>(s.random->uniform(tick)), EventKind::kNodeTick,
              i, 0, s.generation);
}

void Cluster::kill(std::uint32_t i) {
  SimNode& s = nodes_[i];
  if (!s.up) return;
  add_counters(dead_counters_, s.node->counters());
  s.node.reset();
  net_->remove_endpoint(s.addr);  // in-flight datagrams to it are dropped on arrival
  s.up = false;
  s.ever_killed = true;
  ++s.generation;
  trace_.add(static_cast<std::uint64_t>(now()));
  trace_.add(std::string_view("kill"));
  trace_.add(static_cast<std::uint64_t>(i));
}

void Cluster::restart(std::uint32_t i) {
  kill(i);
  start_node(i);
}

void Cluster::partition(const std::vector<std::uint32_t>& side_a) {
  std::unordered_set<std::uint32_t> in_a(side_a.begin(), side_a.end());
  std::vector<env::Endpoint> a, b;
  for (const auto& s : nodes_) (in_a.count(s.index) ? a : b).push_back(s.addr);
  net_->partition({a, b});
}

void Cluster::heal() { net_->heal(); }

void Cluster::set_loss(double loss) {
  LinkProfile p;
  p.latency_ms = config_.latency_min_ms;
  p.jitter_ms = std::max<env::TimeMs>(0, config_.latency_max_ms - config_.latency_min_ms);
  p.loss = loss;
  net_->set_default_profile(p);
}

void Cluster::at(env::TimeMs at_ms, std::function<void()> fn) {
  callbacks_.push_back(std::move(fn));
  queue_.push(at_ms, EventKind::kCallback, 0, callbacks_.size() - 1);
}

void Cluster::run_until(env::TimeMs t_ms) {
  for (;;) {
    const auto q = queue_.next_ms();
    const auto d = net_->next_due_ms();
    // Deliveries go first at equal times: a datagram that arrived "at" a tick is seen by it.
    if (d && *d <= t_ms && (!q || *d <= *q)) {
      clock_.set_ms(std::max(clock_.now_ms(), *d));
      net_->deliver_due();
      ++events_;
      continue;
    }
    if (q && *q <= t_ms) {
      const Event e = queue_.pop();
      clock_.set_ms(std::max(clock_.now_ms(), e.at_ms));
      ++events_;
      dispatch(e);
      continue;
    }
    break;
  }
  clock_.set_ms(std::max(clock_.now_ms(), t_ms));
}

void Cluster::dispatch(const Event& e) {
  switch (e.kind) {
    case EventKind::kNodeTick: {
      SimNode& s = nodes_[e.node];
      if (!s.up || s.generation != e.generation) return;
      s.node->tick();
      queue_.push(now() + config_.tick_ms, EventKind::kNodeTick, e.node, 0, e.generation);
      return;
    }
    case EventKind::kCallback: {
      // Moved out first: the callback may schedule further callbacks (growing the table).
      auto fn = std::move(callbacks_[e.arg]);
      callbacks_[e.arg] = nullptr;
      if (fn) fn();
      return;
    }
    default:
      if (workload_) workload_(e);
      return;
  }
}

void Cluster::deliver(std::uint32_t to, const env::Endpoint& from,
                      std::span<const std::uint8_t> bytes) {
  SimNode& s = nodes_[to];
  if (!s.up) return;  // a powered-off machine: the datagram is lost
  trace_.add(static_cast<std::uint64_t>(now()));
  trace_.add(static_cast<std::uint64_t>(to));
  trace_.add(bytes);
  s.node->on_datagram(from, bytes);
}

std::size_t Cluster::up_count() const {
  return static_cast<std::size_t>(
      std::count_if(nodes_.begin(), nodes_.end(), [](const SimNode& s) { return s.up; }));
}

int Cluster::index_of(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : static_cast<int>(it->second);
}

bool Cluster::converged() const {
  const std::size_t up = up_count();
  if (up == 0) return false;  // nothing has started yet: not "converged" in any useful sense
  // Start with the node that failed the previous check: it most likely still fails, so a check
  // that is called every 100 ms costs one view instead of N until convergence is near.
  const std::size_t n = nodes_.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (first_to_check_ + k) % n;
    const SimNode& s = nodes_[i];
    if (!s.up) continue;
    std::size_t alive_up = 0;
    bool ok = true;
    for (const auto& m : s.node->members()) {
      if (m.state != gossip::MemberState::kAlive) continue;
      const int j = index_of(m.name);
      if (j < 0 || !nodes_[static_cast<std::size_t>(j)].up) {  // a dead node seen "alive"
        ok = false;
        break;
      }
      ++alive_up;
    }
    if (!ok || alive_up != up) {
      first_to_check_ = i;
      return false;
    }
  }
  return true;
}

bool Cluster::all_see_not_alive(const std::vector<std::uint32_t>& observers,
                                const std::vector<std::uint32_t>& subjects,
                                bool require_dead) const {
  std::unordered_set<std::string> names;
  for (auto j : subjects) names.insert(nodes_[j].name);
  for (auto i : observers) {
    const SimNode& s = nodes_[i];
    if (!s.up) continue;
    for (const auto& m : s.node->members()) {
      if (!names.count(m.name)) continue;
      if (m.state == gossip::MemberState::kAlive) return false;
      if (require_dead && m.state == gossip::MemberState::kSuspect) return false;
    }
  }
  return true;
}

gossip::Counters Cluster::total_counters() const {
  gossip::Counters c = dead_counters_;
  for (const auto& s : nodes_)
    if (s.up) add_counters(c, s.node->counters());
  return c;
}

std::uint64_t Cluster::datagrams_sent() const { return net_->stats().sent; }
std::uint64_t Cluster::bytes_sent() const { return net_->stats().bytes_sent; }
std::uint64_t Cluster::datagrams_delivered() const { return net_->stats().delivered; }
std::uint64_t Cluster::datagrams_lost() const { return net_->stats().lost; }
std::uint64_t Cluster::datagrams_blocked() const { return net_->stats().blocked; }
std::uint64_t Cluster::datagrams_to_dead() const { return net_->stats().dropped_unknown; }

std::uint64_t Cluster::datagrams_dropped() const {
  const auto& s = net_->stats();
  return s.lost + s.blocked + s.dropped_paused + s.dropped_unknown + s.dropped_oversize;
}

}  // namespace osmo::sim
