// SPDX-License-Identifier: GPL-2.0-or-later
// Peer streams: TCP connections between daemons for everything that is not gossip (starting jobs,
// relaying their stdio, listing jobs, migrating images). Each stream starts with a mutually
// authenticated handshake keyed by the cluster key (docs/protocol.md, "Peer streams", version 2):
//
//   client -> server  HELLO      magic, version, flags, client nonce, ephemeral X25519 key, name
//   server -> client  CHALLENGE  verdict 0, the server's HELLO (same layout)
//   server -> client  MAC(key, "osmo-peer-server-v2" | both hellos)
//   client -> server  header length | MAC(key, "osmo-peer-client-v2" | both hellos | length)
//   client -> server  header = JSON {"service": ..., ...}: sealed channel frames when encrypted,
//                     else in clear followed by MAC(key, "osmo-peer-header-v2" | hellos | header)
//   server -> client  VERDICT status byte + message (accepted, or why not)
//
// Fresh nonces and keys on both sides defeat replay; a peer without the key can produce neither
// tag. When either side asks for encryption (the `peer_encryption` setting, on by default),
// both derive one key per direction from the X25519 exchange, the cluster key and both hellos,
// and the stream after the verdict is framed with AEAD by a pump process (peer_pump.hpp): the
// service still reads and writes plain bytes on the fd it is given. The whole handshake has one
// deadline; a source address has at most a few handshakes under way at once.
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
  std::atomic<std::uint64_t> refused_flood{0};      // closed at accept: its address had too many
                                                    // handshakes under way
  std::atomic<std::uint64_t> refused_busy{0};       // closed at accept: too many streams open
  std::atomic<std::uint64_t> encrypted{0};          // accepted streams that are encrypted
};

class PeerServer {
 public:
  PeerServer(std::string node_name, Key key, Logger log);
  ~PeerServer();

  void add(std::string service, PeerHandler handler);
  // Whether this server asks for encrypted streams (a stream is encrypted if either side asks).
  void set_encryption(bool on) { shared_->encrypt = on; }
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
    std::atomic<bool> encrypt{true};
    std::mutex mu;
    std::map<std::string, PeerHandler> handlers;  // guarded by mu
    std::map<std::string, int> unauthenticated;   // handshakes under way per source address; mu
  };

  void accept_loop();
  static void serve(const std::shared_ptr<Shared>& shared, UniqueFd conn, env::Endpoint remote);

  std::shared_ptr<Shared> shared_;
  UniqueFd listen_fd_;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
};

// Connects to `to`, authenticates both ways and asks for `header["service"]`, all within
// timeout_ms. On failure, *why (if given) tells a refusal (from the verdict bytes, or our own
// check of the peer's tag) from an unreachable peer. `encrypt` asks for an encrypted stream (the
// peer may ask for one too); the fd returned is then the local end of the stream's pump.
Result<UniqueFd> dial_peer(const std::string& my_name, const Key& key, const env::Endpoint& to,
                           const Json& header, int timeout_ms, DialFailure* why = nullptr,
                           bool encrypt = true);

// Resolves an endpoint to a socket address (numeric or by name), for TCP and UDP alike.
Result<std::pair<sockaddr_storage, socklen_t>> resolve_endpoint(const env::Endpoint& ep);

}  // namespace osmo::daemon
