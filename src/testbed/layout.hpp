// SPDX-License-Identifier: GPL-2.0-or-later
// Names, addresses and file locations of a testbed: everything that follows from a node's number,
// kept in one place so that up, down, list and exec (and docs/testbed.md) agree.
//
//   node nK (K = 1..N): network namespace "osmo-tb-nK", address 10.77.0.K/24 on eth0, port P
//                       (the base port); --loopback: 127.0.0.1, port P+K-1, no namespace
//   bridge:             namespace "osmo-tb-br" holding bridge br0 and the host ends vK of the
//                       nodes' veth pairs; nothing routes from the root namespace into 10.77.0.0/24
//   cgroups:            <parent>/osmo-testbed/nK in each controller (see cgroups.hpp)
//   state:              /run/osmo/testbed as root, else $XDG_RUNTIME_DIR/osmo-testbed or
//                       /tmp/osmo-testbed-$UID: testbed.json, secret (0600), nK/{osmod.sock,
//                       state/, osmod.log, osmod.pid}
//
// Several testbeds run side by side as *instances* (`osmo testbed --instance NAME`, or
// $OSMO_TESTBED_INSTANCE). The default instance (no name) is the one above. Instance NAME has
// namespaces "osmo-tb-NAME-nK" and "osmo-tb-NAME-br", subnet 10.77.S.0/24 with S (1..250) the
// derived from the name, cgroups <parent>/osmo-testbed-NAME/nK and
// its state in the default state path followed by "-NAME" (/run/osmo/testbed-NAME).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <cstddef>

#include "base/result.hpp"

namespace osmo::testbed {

inline constexpr const char* kNetnsPrefix = "osmo-tb-";
inline constexpr const char* kBridgeNetns = "osmo-tb-br";
inline constexpr const char* kBridgeDevice = "br0";
inline constexpr const char* kNodeDevice = "eth0";
// 10.77.S.0/24 (S = 0 for the default instance) exists only inside our namespaces; node K is
// host K, so the size is bounded by it.
inline constexpr int kSubnetBits = 24;
inline constexpr int kMaxNodes = 200;
inline constexpr std::uint16_t kDefaultBasePort = 7946;  // the daemon's default port
inline constexpr const char* kCgroupParentName = "osmo-testbed";
inline constexpr const char* kStateFileName = "testbed.json";
inline constexpr const char* kSecretFileName = "secret";
inline constexpr std::size_t kSecretBytes = 32;
// For tests only: a program run instead of `osmo daemon` (it gets the same arguments after
// argv[0], starting with "daemon").
inline constexpr const char* kDaemonOverrideEnv = "OSMO_TESTBED_DAEMON";
// Extra `osmo daemon` options for every node started while it is set, separated by spaces (e.g.
// "--peer-encryption false" for bench/peersec, which measures both settings).
inline constexpr const char* kDaemonArgsEnv = "OSMO_TESTBED_DAEMON_ARGS";

std::string node_name(int k);
// "n3" -> 3; an error for anything else.
Result<int> parse_node_name(std::string_view name);
std::string node_netns(int k);  // of the default instance

// Instance names: 1 to 12 of [a-z0-9], so every derived name stays short and unambiguous.
inline constexpr std::size_t kMaxInstanceName = 12;
inline constexpr int kMaxInstanceSubnet = 250;
inline constexpr const char* kInstanceEnv = "OSMO_TESTBED_INSTANCE";
Status check_instance_name(std::string_view name);
std::string netns_prefix(std::string_view instance);          // "osmo-tb-" or "osmo-tb-NAME-"
std::string node_netns(std::string_view instance, int k);
std::string bridge_netns(std::string_view instance);
// Is `netns` one of the instance's namespaces (a node's or the bridge's)? The default instance's
// prefix is also the start of every named instance's, so this is an exact match, not a prefix.
bool is_instance_netns(std::string_view instance, std::string_view netns);
std::string cgroup_parent_name(std::string_view instance);    // "osmo-testbed" or "osmo-testbed-NAME"
std::string instance_state_root(std::string_view instance);   // default_state_root() [+ "-NAME"]
std::string node_address(int subnet, int k, bool loopback);   // 10.77.<subnet>.<k>
int instance_subnet(std::string_view instance);               // 0, or 1..250 from the name
std::string bridge_port_device(int k);  // "v3", the bridge end of node 3's veth pair
std::string node_address(int k, bool loopback);
std::uint16_t node_port(int k, bool loopback, std::uint16_t base_port);

// Where the testbed's state lives for this user (see above).
std::string default_state_root();

struct NodePaths {
  std::string dir, socket, state_dir, log, pid_file;
};
NodePaths node_paths(const std::string& root, const std::string& name);
inline std::string state_file(const std::string& root) {
  return root + "/" + kStateFileName;
}
inline std::string secret_file(const std::string& root) {
  return root + "/" + kSecretFileName;
}

}  // namespace osmo::testbed
