// SPDX-License-Identifier: GPL-2.0-or-later
#include "sim/network.hpp"

#include <algorithm>

namespace osmo::sim {

class Network::EndpointTransport final : public env::Transport {
 public:
  EndpointTransport(Network& net, env::Endpoint self) : net_(net), self_(std::move(self)) {}
  void send(const env::Endpoint& to, std::span<const std::uint8_t> datagram) override {
    net_.send(self_, to, datagram);
  }

 private:
  Network& net_;
  env::Endpoint self_;
};

Network::Network(env::ManualClock& clock, std::uint64_t seed) : clock_(clock), random_(seed) {}
Network::~Network() = default;

env::Transport& Network::add_endpoint(const env::Endpoint& addr, Receiver receiver) {
  auto& ep = endpoints_[addr];
  ep.receiver = std::move(receiver);
  if (!ep.transport) ep.transport = std::make_unique<EndpointTransport>(*this, addr);
  return *ep.transport;
}

void Network::set_receiver(const env::Endpoint& addr, Receiver receiver) {
  if (auto it = endpoints_.find(addr); it != endpoints_.end())
    it->second.receiver = std::move(receiver);
}

void Network::remove_endpoint(const env::Endpoint& addr) {
  endpoints_.erase(addr);
}

bool Network::has_endpoint(const env::Endpoint& addr) const {
  return endpoints_.contains(addr);
}

void Network::set_link_profile(const env::Endpoint& from, const env::Endpoint& to,
                               const LinkProfile& p) {
  link_profiles_[{from, to}] = p;
}

namespace {
std::pair<env::Endpoint, env::Endpoint> ordered(const env::Endpoint& a, const env::Endpoint& b) {
  return a < b ? std::pair{a, b} : std::pair{b, a};
}
}  // namespace

void Network::block(const env::Endpoint& a, const env::Endpoint& b) {
  blocked_.insert(ordered(a, b));
}
void Network::unblock(const env::Endpoint& a, const env::Endpoint& b) {
  blocked_.erase(ordered(a, b));
}

void Network::partition(const std::vector<std::vector<env::Endpoint>>& groups) {
  group_of_.clear();
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (const auto& ep : groups[g]) group_of_[ep] = static_cast<int>(g);
}

void Network::heal() {
  group_of_.clear();
  blocked_.clear();
}

bool Network::reachable(const env::Endpoint& from, const env::Endpoint& to) const {
  if (blocked_.contains(ordered(from, to))) return false;
  auto a = group_of_.find(from);
  auto b = group_of_.find(to);
  return a == group_of_.end() || b == group_of_.end() || a->second == b->second;
}

void Network::pause(const env::Endpoint& addr, PauseMode mode) {
  auto it = endpoints_.find(addr);
  if (it == endpoints_.end()) return;
  it->second.paused = true;
  it->second.pause_mode = mode;
}

void Network::resume(const env::Endpoint& addr) {
  auto it = endpoints_.find(addr);
  if (it == endpoints_.end() || !it->second.paused) return;
  Endpoint& ep = it->second;
  ep.paused = false;
  // The process reads its socket buffer first thing after SIGCONT: all of it is due now.
  for (std::size_t i = 0; i < ep.buffered.size(); ++i)
    schedule(ep.buffered_from[i], addr, std::move(ep.buffered[i]), clock_.now_ms());
  ep.buffered.clear();
  ep.buffered_from.clear();
  ep.buffered_bytes = 0;
}

bool Network::paused(const env::Endpoint& addr) const {
  auto it = endpoints_.find(addr);
  return it != endpoints_.end() && it->second.paused;
}

const LinkProfile& Network::profile(const env::Endpoint& from, const env::Endpoint& to) const {
  if (link_profiles_.empty()) return default_profile_;
  auto it = link_profiles_.find({from, to});
  return it == link_profiles_.end() ? default_profile_ : it->second;
}

env::TimeMs Network::draw_latency(const LinkProfile& p) {
  env::TimeMs jitter =
      p.jitter_ms > 0
          ? static_cast<env::TimeMs>(random_.uniform(static_cast<std::uint64_t>(p.jitter_ms) + 1))
          : 0;
  return std::max<env::TimeMs>(0, p.latency_ms) + jitter;
}

void Network::schedule(const env::Endpoint& from, const env::Endpoint& to,
                       std::vector<std::uint8_t> data, env::TimeMs due_ms) {
  queue_.push(InFlight{due_ms, next_seq_++, from, to, std::move(data)});
}

void Network::send(const env::Endpoint& from, const env::Endpoint& to,
                   std::span<const std::uint8_t> data) {
  ++stats_.sent;
  stats_.bytes_sent += data.size();
  if (data.size() > env::kMaxDatagramBytes) {
    ++stats_.dropped_oversize;
    return;
  }
  if (paused(from)) {  // a stopped process sends nothing
    ++stats_.dropped_paused;
    return;
  }
  const LinkProfile& p = profile(from, to);
  if (p.loss > 0 && random_.unit() < p.loss) {
    ++stats_.lost;
    return;
  }
  env::TimeMs now = clock_.now_ms();
  std::vector<std::uint8_t> copy(data.begin(), data.end());
  if (p.duplicate > 0 && random_.unit() < p.duplicate) {
    ++stats_.duplicated;
    schedule(from, to, copy, now + draw_latency(p));
  }
  schedule(from, to, std::move(copy), now + draw_latency(p));
}

std::size_t Network::deliver_due(std::size_t max_deliveries) {
  std::size_t delivered = 0;
  env::TimeMs now = clock_.now_ms();
  while (!queue_.empty() && queue_.top().due_ms <= now && delivered < max_deliveries) {
    // priority_queue::top is const; the element is popped right away, so moving from it is safe.
    InFlight d = std::move(const_cast<InFlight&>(queue_.top()));
    queue_.pop();
    auto it = endpoints_.find(d.to);
    if (it == endpoints_.end()) {
      ++stats_.dropped_unknown;
      continue;
    }
    if (!reachable(d.from, d.to)) {
      ++stats_.blocked;
      continue;
    }
    Endpoint& ep = it->second;
    if (ep.paused) {
      if (ep.pause_mode == PauseMode::kQueue &&
          ep.buffered_bytes + d.data.size() <= kPausedBufferBytes) {
        ep.buffered_bytes += d.data.size();
        ep.buffered_from.push_back(d.from);
        ep.buffered.push_back(std::move(d.data));
      } else {
        ++stats_.dropped_paused;
      }
      continue;
    }
    ++stats_.delivered;
    ++delivered;
    // Copy the receiver: it may replace itself (a restart) or remove its endpoint while running.
    Receiver receiver = ep.receiver;
    if (receiver) receiver(d.from, d.data);
  }
  return delivered;
}

std::optional<env::TimeMs> Network::next_due_ms() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.top().due_ms;
}

}  // namespace osmo::sim
