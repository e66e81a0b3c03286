// SPDX-License-Identifier: GPL-2.0-or-later
// A simulated osmo cluster: N nodes, each running the real gossip::Node over the virtual datagram
// network (sim/network.hpp), driven by one event queue and one virtual clock. Nodes can be killed
// (silently: they stop ticking and receiving, like a powered-off machine), restarted with empty
// state, partitioned and healed. Everything random derives from the one seed, and events at equal
// times run in scheduling order, so a run is a pure function of its configuration.
//
// The workload (jobs, load sampling, placement) lives in workload.hpp and plugs in through
// set_workload_handler(); this file only knows nodes, time and the network.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/log.hpp"
#include "env/clock.hpp"
#include "env/random.hpp"
#include "gossip/node.hpp"
#include "sim/event_queue.hpp"
#include "sim/metrics.hpp"

namespace osmo::sim {

class Network;

struct ClusterConfig {
  std::uint64_t seed = 1;
  int nodes = 100;
  int seed_nodes = 3;                  // the first few nodes are everyone's seeds
  env::TimeMs tick_ms = 20;            // each node's tick period (the contract asks for 10-50 ms)
  env::TimeMs join_spread_ms = 2000;   // node starts are spread uniformly over this window
  env::TimeMs latency_min_ms = 1;      // one-way datagram latency, uniform in [min, max]
  env::TimeMs latency_max_ms = 5;
  double loss = 0.0;                   // independent datagram loss probability
  bool heterogeneous = true;           // cpus in {1,2,4,8}, speed in {0.75,1,1.5}; else 4 x 1.0
  gossip::Config gossip;               // timers; name, advertise, seeds and key are filled in
  LogLevel log_level = LogLevel::kWarn;
};

struct SimNode {
  std::uint32_t index = 0;
  std::string name;
  env::Endpoint addr;
  double cpus = 4;
  double speed = 1.0;
  std::uint64_t mem_total_mb = 16384;
  bool up = false;
  bool ever_killed = false;
  std::uint64_t generation = 0;      // bumped by every kill/restart; stale events are ignored
  env::TimeMs up_since_ms = 0;
  std::unique_ptr<env::SeededRandom> random;
  std::unique_ptr<env::SeededRandom> nonces;  // datagram envelope nonces (not the protocol's draws)
  std::unique_ptr<gossip::Node> node;  // present while up
};

class Cluster {
 public:
  explicit Cluster(ClusterConfig config);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Schedules every node's start within join_spread_ms (the seed nodes first, at time 0).
  void start_all();
  // Starts one node now (used by start_all's events and by restart()).
  void start_node(std::uint32_t i);
  // Powers a node off: no more ticks, datagrams to it are dropped, its state is gone.
  void kill(std::uint32_t i);
  // Kill followed by a fresh start under the same name and address (a reboot).
  void restart(std::uint32_t i);
  // Cuts every link between `side_a` and the other nodes (both directions); heal() restores them.
  void partition(const std::vector<std::uint32_t>& side_a);
  void heal();
  void set_loss(double loss);

  // Processes every event due at or before `t_ms`; the clock then reads t_ms.
  void run_until(env::TimeMs t_ms);
  // Schedules a scenario callback; it runs at `at_ms` in event order.
  void at(env::TimeMs at_ms, std::function<void()> fn);

  using WorkloadHandler = std::function<void(const Event&)>;
  void set_workload_handler(WorkloadHandler h) { workload_ = std::move(h); }
  EventQueue& queue() { return queue_; }

  env::TimeMs now() const { return clock_.now_ms(); }
  const env::ManualClock& clock() const { return clock_; }
  const ClusterConfig& config() const { return config_; }
  std::size_t size() const { return nodes_.size(); }
  SimNode& node(std::uint32_t i) { return nodes_[i]; }
  const SimNode& node(std::uint32_t i) const { return nodes_[i]; }
  std::size_t up_count() const;
  // Index of a node by name, or -1.
  int index_of(const std::string& name) const;

  // True when at least one node is up and every up node sees exactly the up nodes as alive.
  bool converged() const;
  // True when every up node in `observers` sees none of `subjects` as alive (suspect, dead, left
  // or forgotten all count as "detected").
  bool all_see_not_alive(const std::vector<std::uint32_t>& observers,
                         const std::vector<std::uint32_t>& subjects,
                         bool require_dead = false) const;

  // Everything observable so far folded into one hash (deliveries, state changes).
  TraceHash& trace() { return trace_; }
  std::uint64_t events_processed() const { return events_; }
  gossip::Counters total_counters() const;
  std::uint64_t datagrams_sent() const;
  std::uint64_t bytes_sent() const;
  std::uint64_t datagrams_delivered() const;
  std::uint64_t datagrams_dropped() const;         // all causes below, and paused/oversize
  std::uint64_t datagrams_lost() const;            // random loss
  std::uint64_t datagrams_blocked() const;         // partition
  std::uint64_t datagrams_to_dead() const;         // sent to a node that was powered off

 private:
  void dispatch(const Event& e);
  void deliver(std::uint32_t to, const env::Endpoint& from, std::span<const std::uint8_t> bytes);

  ClusterConfig config_;
  env::ManualClock clock_;
  env::SeededRandom random_;
  std::unique_ptr<Network> net_;
  EventQueue queue_;
  std::vector<SimNode> nodes_;
  std::unordered_map<std::string, std::uint32_t> by_name_;
  std::vector<std::function<void()>> callbacks_;
  WorkloadHandler workload_;
  TraceHash trace_;
  std::uint64_t events_ = 0;
  mutable std::size_t first_to_check_ = 0;  // converged(): the node that failed last time
  gossip::Counters dead_counters_;  // counters of node instances that were killed
};

}  // namespace osmo::sim
