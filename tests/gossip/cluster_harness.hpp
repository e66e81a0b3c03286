// SPDX-License-Identifier: GPL-2.0-or-later
// A test cluster: N gossip::Node on one sim::Network, one ManualClock, everything seeded. step()
// advances virtual time, delivers due datagrams and ticks every running node; helpers ask what
// each node believes about the others. No sockets, no sleeps, no threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "env/clock.hpp"
#include "env/random.hpp"
#include "gossip/node.hpp"
#include "sim/network.hpp"
#include "wire/mac.hpp"

namespace osmo::gossip::testing {

inline std::vector<std::uint8_t> test_key() {
  static const std::string secret = "unit-test-cluster-secret";
  auto k = wire::derive_key({reinterpret_cast<const std::uint8_t*>(secret.data()), secret.size()});
  return {k.begin(), k.end()};
}

class Cluster {
 public:
  static constexpr env::TimeMs kStepMs = 10;
  // Loads are resampled this often, as the daemon does.
  static constexpr env::TimeMs kLoadRefreshMs = 500;

  explicit Cluster(std::uint64_t seed, std::function<void(Config&)> tweak = {})
      : clock_(1'000'000), net_(clock_, seed), seed_(seed), tweak_(std::move(tweak)) {
    Logger::set_level(LogLevel::kWarn);
    net_.set_default_profile(sim::LinkProfile{1, 4, 0, 0});
  }

  static std::string name(int i) { return "n" + std::to_string(i); }
  static env::Endpoint addr(int i) {
    return env::Endpoint{"10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1),
                         7946};
  }

  Config config(int i) const {
    Config c;
    c.node_name = name(i);
    c.advertise = addr(i);
    // Everyone knows node 0 and itself (a seed list may include the node itself).
    c.seeds = {addr(0), addr(i)};
    if (i == 0 && size() > 1) c.seeds.push_back(addr(1));
    c.key = test_key();
    if (tweak_) tweak_(c);
    return c;
  }

  // Adds node i (i == size()) and starts it.
  int add_node(std::function<void(Config&)> extra = {}) {
    int i = size();
    slots_.push_back(std::make_unique<Slot>());
    boot(i, std::move(extra));
    return i;
  }

  void add_nodes(int n) {
    for (int k = 0; k < n; ++k) add_node();
  }

  int size() const { return static_cast<int>(slots_.size()); }
  Node& node(int i) { return *slots_[i]->node; }
  const Node& node(int i) const { return *slots_[i]->node; }
  bool running(int i) const { return slots_[i]->node && !net_.paused(addr(i)); }
  sim::Network& net() { return net_; }
  env::ManualClock& clock() { return clock_; }
  env::TimeMs now() const { return clock_.now_ms(); }

  void step() {
    clock_.advance_ms(kStepMs);
    net_.deliver_due();
    for (int i = 0; i < size(); ++i) {
      if (!running(i)) continue;
      if (now() - slots_[i]->load_set_ms >= kLoadRefreshMs) set_load(i);
      node(i).tick();
    }
  }

  void run_for(env::TimeMs ms, const std::function<void()>& each_step = {}) {
    for (env::TimeMs t = 0; t < ms; t += kStepMs) {
      step();
      if (each_step) each_step();
    }
  }

  // Steps until pred holds; returns the virtual time it took, or -1 after max_ms.
  env::TimeMs run_until(const std::function<bool()>& pred, env::TimeMs max_ms,
                        const std::function<void()>& each_step = {}) {
    env::TimeMs start = now();
    while (now() - start <= max_ms) {
      if (pred()) return now() - start;
      step();
      if (each_step) each_step();
    }
    return pred() ? now() - start : -1;
  }

  std::optional<MemberView> view(int viewer, int subject) const {
    for (auto& v : node(viewer).members())
      if (v.name == name(subject)) return v;
    return std::nullopt;
  }

  std::optional<MemberState> state(int viewer, int subject) const {
    auto v = view(viewer, subject);
    return v ? std::optional(v->state) : std::nullopt;
  }

  // What `viewer` believes about each node, by name (one members() call).
  std::map<std::string, MemberView> views_of(int viewer) const {
    std::map<std::string, MemberView> out;
    for (auto& v : node(viewer).members()) out.emplace(v.name, v);
    return out;
  }

  // Every node in `who` sees every node in `who` alive.
  bool all_alive(const std::vector<int>& who) const {
    for (int a : who) {
      auto views = views_of(a);
      for (int b : who) {
        auto it = views.find(name(b));
        if (it == views.end() || it->second.state != MemberState::kAlive) return false;
      }
    }
    return true;
  }
  bool all_alive() const { return all_alive(all()); }

  // Every node in `viewers` sees `subject` in state s.
  bool everyone_sees(int subject, MemberState s, const std::vector<int>& viewers) const {
    for (int a : viewers)
      if (state(a, subject) != s) return false;
    return true;
  }

  // Does any node in `viewers` hold any node in `subjects` as dead?
  bool any_dead(const std::vector<int>& viewers, const std::vector<int>& subjects) const {
    for (int a : viewers) {
      auto views = views_of(a);
      for (int b : subjects) {
        auto it = views.find(name(b));
        if (it != views.end() && it->second.state == MemberState::kDead) return true;
      }
    }
    return false;
  }

  // Every node has a load entry for every other node no older than max_age_ms.
  bool loads_complete(env::TimeMs max_age_ms, const std::vector<int>& who) const {
    for (int a : who) {
      auto views = node(a).members();
      for (int b : who) {
        if (a == b) continue;
        bool found = false;
        for (auto& v : views) {
          if (v.name != name(b)) continue;
          found = v.load.has_value() && v.load_age_ms <= max_age_ms &&
                  v.load->runnable == expected_runnable(b);
        }
        if (!found) return false;
      }
    }
    return true;
  }

  // Largest load age any node holds about any other node in `who` (-1 if one is missing).
  env::TimeMs max_load_age(const std::vector<int>& who) const {
    env::TimeMs worst = 0;
    for (int a : who) {
      auto views = node(a).members();
      for (int b : who) {
        if (a == b) continue;
        env::TimeMs age = -1;
        for (auto& v : views)
          if (v.name == name(b) && v.load) age = v.load_age_ms;
        if (age < 0) return -1;
        worst = std::max(worst, age);
      }
    }
    return worst;
  }

  std::vector<int> all() const {
    std::vector<int> v;
    for (int i = 0; i < size(); ++i) v.push_back(i);
    return v;
  }
  std::vector<int> all_but(int x) const {
    std::vector<int> v;
    for (int i = 0; i < size(); ++i)
      if (i != x) v.push_back(i);
    return v;
  }

  void pause(int i, sim::PauseMode mode = sim::PauseMode::kQueue) { net_.pause(addr(i), mode); }
  void resume(int i) { net_.resume(addr(i)); }

  // The process dies: its endpoint disappears, the node object is destroyed.
  void crash(int i) {
    net_.remove_endpoint(addr(i));
    slots_[i]->node.reset();
  }
  // A fresh process with a fresh state on the same address.
  void restart(int i, std::function<void(Config&)> extra = {}) {
    crash(i);
    boot(i, std::move(extra));
  }

  static double expected_runnable(int i) { return 1.0 + i; }

 private:
  struct Slot {
    std::unique_ptr<env::SeededRandom> random;
    std::unique_ptr<Node> node;
    env::TimeMs load_set_ms = 0;
    int boots = 0;
  };

  void boot(int i, std::function<void(Config&)> extra) {
    Slot& s = *slots_[i];
    Config c = config(i);
    if (extra) extra(c);
    s.random =
        std::make_unique<env::SeededRandom>(seed_ * 1'000'003 + i * 7919 + s.boots * 104'729);
    ++s.boots;
    env::Transport& t = net_.add_endpoint(
        addr(i), [this, i](const env::Endpoint& from, std::span<const std::uint8_t> d) {
          if (slots_[i]->node) slots_[i]->node->on_datagram(from, d);
        });
    s.node = std::make_unique<Node>(c, clock_, t, *s.random,
                                    Logger(name(i), "gossip", [this] { return clock_.now_ms(); }));
    s.node->start();
    set_load(i);
  }

  void set_load(int i) {
    LoadInfo l;
    l.runnable = expected_runnable(i);
    l.cpus = 2;
    l.load = l.runnable / l.cpus;
    l.mem_total_mb = 4096;
    l.mem_free_mb = 1024 + i;
    l.jobs = static_cast<std::uint32_t>(i);
    node(i).set_local_load(l);
    slots_[i]->load_set_ms = now();
  }

  env::ManualClock clock_;
  sim::Network net_;
  std::uint64_t seed_;
  std::function<void(Config&)> tweak_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace osmo::gossip::testing
