// SPDX-License-Identifier: GPL-2.0-or-later
// Peer streams: TCP connections between daemons for everything that is not gossip (starting jobs,
// relaying their stdio, listing jobs, migrating images). Each stream starts with a mutually
// authenticated handshake keyed by the cluster secret (docs/protocol.md, "Peer streams"):
//
//   client -> server  HELLO   magic, version, client nonce, client node name
//   server -> client  CHALLENGE  magic, version, server nonce, server name,
//                              MAC(key, "osmo-peer-server" | cnonce | snonce | names)
//   client -> server  REQUEST MAC(key, "osmo-peer-client" | cnonce | snonce | names | header),
//                             header = JSON {"service": ..., ...}
//   server -> client  VERDICT status byte + message (accepted, or why not)
//
// Fresh nonces on both sides defeat replay; a peer without the secret cannot produce either MAC.
// After the verdict the stream belongs to the service. The handshake has a deadline, so a silent
// or slow client cannot hold a server thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/log.hpp"
#include "daemon/services.hpp"

namespace osmo::daemon {

using Key = std::array<std::uint8_t, 32>;

struct PeerCounters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused_auth{0};       // bad MAC / wrong version / malformed hello
  std::atomic<std::uint64_t> refused_service{0};    // unknown service
};

class PeerServer {
 public:
  PeerServer(std::string node_name, Key key, Logger log);
  ~PeerServer();

  void add(std::string service, PeerHandler handler);
  Status start(const env::Endpoint& listen);
  void stop();
  const PeerCounters& counters() const { return shared_->counters; }

 private:
  // Everything a connection thread touches. Threads are detached (a job relay lives as long as its
  // job), so they hold this by shared_ptr and never touch the PeerServer, which may be gone first.
  struct Shared {
    std::string node_name;
    Key key;
    Logger log;
    PeerCounters counters;
    std::atomic<int> active{0};
    std::mutex mu;
    std::map<std::string, PeerHandler> handlers;  // guarded by mu
  };

  void accept_loop();
  static void serve(const std::shared_ptr<Shared>& shared, UniqueFd conn, env::Endpoint remote);

  std::shared_ptr<Shared> shared_;
  UniqueFd listen_fd_;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
};

// Connects to `to`, authenticates both ways and asks for `header["service"]`. On failure, *why
// (if given) tells a refusal (from the verdict bytes, or our own check of the peer's tag) from an
// unreachable peer.
Result<UniqueFd> dial_peer(const std::string& my_name, const Key& key, const env::Endpoint& to,
                           const Json& header, int timeout_ms, DialFailure* why = nullptr);

// Resolves an endpoint to a socket address (numeric or by name), for TCP and UDP alike.
Result<std::pair<sockaddr_storage, socklen_t>> resolve_endpoint(const env::Endpoint& ep);

}  // namespace osmo::daemon
