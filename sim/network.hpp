// SPDX-License-Identifier: GPL-2.0-or-later
// A virtual datagram network for unit tests and the simulator. It hosts many endpoints, each with
// its own env::Transport, and delivers their datagrams on a ManualClock's timeline with
// configurable latency, jitter, loss and duplication; it can cut links (blocked pairs, partitions
// into groups) and pause an endpoint as SIGSTOP would: while paused, datagrams to it wait in a
// bounded receive queue (like a socket buffer) or are dropped, and are delivered, stale, when it
// resumes. All randomness comes from one seeded generator, so a run is repeatable.
//
// The network never advances the clock and never ticks anyone: the driver advances the clock,
// calls deliver_due() and ticks whatever runs on the endpoints (skipping paused ones).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "env/clock.hpp"
#include "env/endpoint.hpp"
#include "env/random.hpp"
#include "env/transport.hpp"

namespace osmo::sim {

// Properties of a one-way path. Latency is uniform in [latency_ms, latency_ms + jitter_ms], so
// jitter also reorders datagrams.
struct LinkProfile {
  env::TimeMs latency_ms = 1;
  env::TimeMs jitter_ms = 0;
  double loss = 0;       // probability that a datagram is lost
  double duplicate = 0;  // probability that a datagram is delivered twice
};

enum class PauseMode : std::uint8_t {
  kQueue,  // like SIGSTOP: datagrams wait in the receive buffer (up to its size), then delivered
  kDrop,   // datagrams to the endpoint are lost while paused
};

struct NetStats {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;  // random loss
  std::uint64_t duplicated = 0;
  std::uint64_t blocked = 0;  // dropped by a block or partition
  std::uint64_t dropped_paused =
      0;  // paused receiver with a full buffer (or kDrop), or paused sender
  std::uint64_t dropped_unknown = 0;  // no endpoint at the destination
  std::uint64_t dropped_oversize = 0;
  std::uint64_t bytes_sent = 0;  // datagram bytes handed to send() (wire frame, MAC included)
};

class Network {
 public:
  using Receiver = std::function<void(const env::Endpoint& from, std::span<const std::uint8_t>)>;

  // Bytes a paused endpoint buffers before dropping: Linux's default rmem for a UDP socket.
  static constexpr std::size_t kPausedBufferBytes = 212'992;

  Network(env::ManualClock& clock, std::uint64_t seed);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // Adds an endpoint and returns its transport (owned by the network, valid until the endpoint is
  // removed). Replaces the receiver if the endpoint exists.
  env::Transport& add_endpoint(const env::Endpoint& addr, Receiver receiver);
  void set_receiver(const env::Endpoint& addr, Receiver receiver);
  // A crash: the endpoint disappears; datagrams in flight to it are dropped on arrival.
  void remove_endpoint(const env::Endpoint& addr);
  bool has_endpoint(const env::Endpoint& addr) const;

  void set_default_profile(const LinkProfile& p) { default_profile_ = p; }
  const LinkProfile& default_profile() const { return default_profile_; }
  // Overrides the profile of the one-way path from -> to.
  void set_link_profile(const env::Endpoint& from, const env::Endpoint& to, const LinkProfile& p);

  // Cuts both directions between a and b (checked at delivery: datagrams in flight are lost too).
  void block(const env::Endpoint& a, const env::Endpoint& b);
  void unblock(const env::Endpoint& a, const env::Endpoint& b);
  // Splits the listed endpoints into groups that cannot reach each other; unlisted endpoints
  // reach everyone. Replaces any previous partition.
  void partition(const std::vector<std::vector<env::Endpoint>>& groups);
  // Removes the partition and every block.
  void heal();
  bool reachable(const env::Endpoint& from, const env::Endpoint& to) const;

  void pause(const env::Endpoint& addr, PauseMode mode = PauseMode::kQueue);
  // Resumes: buffered datagrams become due now, in arrival order.
  void resume(const env::Endpoint& addr);
  bool paused(const env::Endpoint& addr) const;

  // Delivers every datagram due at or before the clock's now, in (due time, send order) order,
  // including those sent by receivers meanwhile if they are due too. Returns how many were
  // delivered. At most `max_deliveries` per call, so a zero-latency echo loop cannot hang.
  std::size_t deliver_due(std::size_t max_deliveries = 10'000'000);
  // When the next datagram is due, if any is in flight.
  std::optional<env::TimeMs> next_due_ms() const;
  std::size_t in_flight() const { return queue_.size(); }

  const NetStats& stats() const { return stats_; }

 private:
  class EndpointTransport;
  struct Endpoint {
    Receiver receiver;
    std::unique_ptr<EndpointTransport> transport;
    bool paused = false;
    PauseMode pause_mode = PauseMode::kQueue;
    std::vector<std::vector<std::uint8_t>> buffered;
    std::vector<env::Endpoint> buffered_from;
    std::size_t buffered_bytes = 0;
  };
  struct InFlight {
    env::TimeMs due_ms = 0;
    std::uint64_t seq = 0;
    env::Endpoint from;
    env::Endpoint to;
    std::vector<std::uint8_t> data;
  };
  struct Later {
    bool operator()(const InFlight& a, const InFlight& b) const {
      return a.due_ms != b.due_ms ? a.due_ms > b.due_ms : a.seq > b.seq;
    }
  };

  void send(const env::Endpoint& from, const env::Endpoint& to, std::span<const std::uint8_t> data);
  void schedule(const env::Endpoint& from, const env::Endpoint& to, std::vector<std::uint8_t> data,
                env::TimeMs due_ms);
  const LinkProfile& profile(const env::Endpoint& from, const env::Endpoint& to) const;
  env::TimeMs draw_latency(const LinkProfile& p);

  env::ManualClock& clock_;
  env::SeededRandom random_;
  LinkProfile default_profile_;
  std::map<env::Endpoint, Endpoint> endpoints_;
  std::map<std::pair<env::Endpoint, env::Endpoint>, LinkProfile> link_profiles_;
  std::set<std::pair<env::Endpoint, env::Endpoint>> blocked_;  // (min, max)
  std::map<env::Endpoint, int> group_of_;
  std::priority_queue<InFlight, std::vector<InFlight>, Later> queue_;
  std::uint64_t next_seq_ = 0;
  NetStats stats_;
};

}  // namespace osmo::sim
