// SPDX-License-Identifier: GPL-2.0-or-later
// How parts of osmo plug into the daemon without the daemon knowing them. A part (e.g. src/run)
// registers a plugin at program start (from its add_*_commands function); when `osmo daemon`
// starts, each plugin is called with the Services registry (to add control-socket operations and
// peer-stream services) and the DaemonApi (to read the cluster view and reach other nodes).
//
// Threading: control connections and peer streams are each served on a thread of their own, so
// handlers may block (bounded). DaemonApi methods are thread-safe.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "env/endpoint.hpp"
#include "gossip/node.hpp"
#include "metrics/registry.hpp"

namespace osmo::daemon {

using Json = nlohmann::json;

// One request on the control socket (a unix stream socket speaking JSON lines, see
// docs/protocol.md). The peer's credentials come from SO_PEERCRED and cannot be forged.
struct ControlContext {
  ucred peer{};           // pid, uid, gid of the connected client
  int conn_fd = -1;       // the connection, for handlers that pass fds (send_fds) or stream
  std::vector<UniqueFd> fds;        // fds the client passed with this request (SCM_RIGHTS)
  std::vector<UniqueFd> reply_fds;  // fds to pass back with the response line
  // Set by a handler that keeps the connection for later use (a registration the daemon writes
  // to afterwards): the server hands the connection over right after a successful response line,
  // and stops serving it. Anything the client sent after this request is not read by the server.
  std::function<void(UniqueFd conn)> keep_connection;
};

// Returns the response object; the daemon adds "ok": true. To fail, return an Error: the client
// sees {"ok": false, "error": message}.
using ControlHandler = std::function<Result<Json>(const Json& request, ControlContext& ctx)>;

// One authenticated peer stream (TCP, after the handshake). The handler owns the connection.
struct PeerContext {
  env::Endpoint remote;     // address the connection came from
  std::string remote_node;  // node name the peer announced in its (authenticated) hello
};
using PeerHandler = std::function<void(UniqueFd conn, const Json& header, const PeerContext& ctx)>;

class Services {
 public:
  virtual ~Services() = default;
  virtual void add_control(std::string op, ControlHandler handler) = 0;
  virtual void add_peer(std::string service, PeerHandler handler) = 0;
  // Reports how many osmo jobs run on this node; gossiped with the load (LoadInfo::jobs).
  virtual void set_job_counter(std::function<std::uint32_t()> counter) = 0;
  // Reports how many guest jobs (home elsewhere) a drain still has to move away: the daemon's
  // SIGTERM and `osmo leave` wait for 0 (or the grace time) before leaving.
  virtual void set_guest_counter(std::function<std::uint32_t()> counter) = 0;
};

// The balancing settings of this node (daemon configuration, docs/balancing.md).
struct BalanceSettings {
  bool enabled = true;          // `balance = false`: send and take no automatic migration
  int interval_ms = 1000;       // how often the balancing loop decides
  int drain_grace_ms = 30'000;  // SIGTERM / leave: how long to move guests away before leaving
};

// Why a peer stream could not be opened (dial_peer's `why`), for callers that react differently:
// `osmo run` reports a refusal as such (exit 251), an unreachable node as no node (250).
enum class DialFailure {
  kUnreachable,       // no connection, or it broke or timed out during the handshake
  kNotAuthenticated,  // the peer does not share our cluster secret (either side's check failed)
                      // or does not speak our handshake (magic, version)
  kRefused,           // authenticated, but the peer refused the request (verdict 2: service)
};

class DaemonApi {
 public:
  virtual ~DaemonApi() = default;
  virtual const std::string& node_name() const = 0;
  virtual env::Endpoint advertise() const = 0;  // our gossip/peer address
  virtual std::vector<gossip::MemberView> members() const = 0;
  virtual const std::filesystem::path& state_dir() const = 0;
  virtual const std::array<std::uint8_t, 32>& key() const = 0;
  // Opens an authenticated stream to another node's daemon and asks for `service` with `header`.
  // On success the stream is positioned right after the peer's acceptance. On failure, *why
  // (if given) says which kind.
  virtual Result<UniqueFd> dial_peer(const env::Endpoint& to, const std::string& service,
                                     const Json& header, int timeout_ms,
                                     DialFailure* why = nullptr) = 0;
  virtual BalanceSettings balance_settings() const = 0;
  // Whether this node asks for encrypted peer streams (`peer_encryption`); a process that dials
  // a peer on the daemon's behalf (a migration target) asks the same.
  virtual bool peer_encryption() const { return true; }
  // Draining (`osmo drain`, SIGTERM): the node takes no new job and no migration, its guests
  // move away. Gossiped with the load (gossip::kLoadFlagDraining) from the next sample on.
  virtual bool draining() const = 0;
  virtual void set_draining(bool on) = 0;
  // The daemon's Prometheus metrics: a part registers its own at plugin time (docs/operations.md
  // lists them); served on GET /metrics when `metrics_listen` is set.
  virtual metrics::Registry& metrics() = 0;
  // The control socket's path (for a process the daemon sets up to call it back: a spread
  // deputy, docs/spread.md); empty if unknown.
  virtual std::string control_socket() const { return {}; }
};

using Plugin = std::function<void(Services&, DaemonApi&)>;
// Called before parsing the command line (from a part's add_*_commands function).
void register_plugin(Plugin plugin);
const std::vector<Plugin>& plugins();

}  // namespace osmo::daemon
