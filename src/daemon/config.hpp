// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's configuration: command-line options, optionally read from a TOML file first
// (options given on the command line win). Every default is named here with the reason for it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "env/endpoint.hpp"

namespace osmo::daemon {

inline constexpr std::uint16_t kDefaultPort = 7946;  // gossip (UDP) and peer streams (TCP)
inline constexpr std::uint16_t kDefaultMetricsPort = 9946;  // the scrape endpoint, when enabled
inline constexpr const char* kDefaultSecretFile = "/etc/osmo/cluster.key";
inline constexpr const char* kDefaultStateDir = "/var/lib/osmo";

struct DaemonConfig {
  std::string name;                 // default: hostname
  std::string listen = "0.0.0.0";   // host[:port]
  std::string advertise;            // host[:port] others use; default: listen, or the first
                                    // non-loopback address when listening on a wildcard
  std::vector<std::string> join;    // host[:port] of live members
  std::string secret_file = kDefaultSecretFile;
  std::string state_dir = kDefaultStateDir;
  std::string socket;               // default: the CLI's resolved control socket
  std::string load_scope = "auto";  // auto | machine | cgroup
  double speed = 0;                 // relative CPU speed override (0 = measured/default)
  std::string log_level;            // overrides the global --log-level when set
  // Gossip bodies encrypted (true) or in clear for debugging with tcpdump (false; still
  // authenticated and replay-protected). Every node must use the same value.
  bool gossip_encryption = true;
  // Peer streams (job start, stdio relay, signals, ps, migration) encrypted with per-stream keys
  // (true), or in clear after the authenticated handshake (false: for a trusted network, to save
  // the cost docs/security.md measures). A stream is encrypted when either end asks for it, so
  // nodes may differ during a change.
  bool peer_encryption = true;
  // Balancing (docs/balancing.md). The loop decides once a second: a job needs 3 s of age and
  // 5 s of residence before it can move, so deciding more often gains nothing and costs /proc reads.
  bool balance = true;
  int balance_interval_ms = 1000;
  // On SIGTERM or `osmo leave`, guests have this long to move away before the node leaves (a
  // 1 GiB stop-and-copy takes ~1.6 s here; 30 s leaves room for a dozen of them and a retry).
  int drain_grace_ms = 30'000;
  // host:port of the Prometheus scrape endpoint (GET /metrics); empty: none (docs/operations.md).
  std::string metrics_listen;
};

inline constexpr int kMinBalanceIntervalMs = 100;

// Fills fields not set on the command line from a TOML file. `set_on_cli` names the keys the
// command line already set. Unknown keys are an error (a typo must not be silently ignored).
Status apply_config_file(const std::string& path, const std::vector<std::string>& set_on_cli,
                         DaemonConfig* config);

struct ResolvedConfig {
  std::string name;
  env::Endpoint listen;
  env::Endpoint advertise;
  std::vector<env::Endpoint> join;
  std::vector<std::uint8_t> secret;
  std::string state_dir;
  std::string socket;
  bool gossip_encryption = true;
  bool peer_encryption = true;
  bool balance = true;
  int balance_interval_ms = 1000;
  int drain_grace_ms = 30'000;
  std::optional<env::Endpoint> metrics_listen;
};

// Validates and resolves: reads the secret (refusing one readable by group/others, or that is not
// exactly 32 bytes, or is printable text: a passphrase),
// parses addresses, picks the advertise address.
Result<ResolvedConfig> resolve(const DaemonConfig& config);

}  // namespace osmo::daemon
