// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon of one testbed node: its command line (the contract of `osmo daemon`), starting it
// detached inside the node's namespace and cgroup, finding it again through its pid file, and
// waiting for its control socket.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "platform/linux/process.hpp"
#include "testbed/state.hpp"

namespace osmo::testbed {

// At most this many --join addresses per daemon: enough seeds for any node to find the cluster
// while some are down, without a command line that grows with N.
inline constexpr int kMaxJoinSeeds = 8;

enum class NodeState { kRunning, kPaused, kStopped };
const char* node_state_name(NodeState s);

struct NodeProcess {
  NodeState state = NodeState::kStopped;
  std::optional<platform::ProcessIdentity> id;  // set while running or paused
};
// From the pid file, checked against the live process (a recycled pid reads as stopped).
NodeProcess inspect_node(const std::string& root, const NodeRecord& node);

// Everything after argv[0]: "daemon --name nK --listen A:P --join ... --secret-file F
// --state-dir D --socket S --load-scope cgroup".
std::vector<std::string> daemon_arguments(const std::string& root, const TestbedState& state,
                                          const NodeRecord& node);

// Starts the node's daemon (the stand-in of $OSMO_TESTBED_DAEMON, or of the state, when set).
// A stale control socket is removed first, so that waiting for it means waiting for this daemon.
Result<platform::ProcessIdentity> start_node_daemon(const std::string& root,
                                                    const TestbedState& state,
                                                    const NodeRecord& node);

// Waits until each node's control socket exists, at most timeout_ms in all. A daemon that exits
// meanwhile or a timeout is an error naming the node and quoting the end of its log.
Status wait_for_control_sockets(const std::string& root, const TestbedState& state,
                                const std::vector<std::string>& names, int timeout_ms);

// SIGKILLs the node's daemon (if it runs) and waits (bounded) until it is gone.
Status kill_node_daemon(const std::string& root, const NodeRecord& node);

// The last `lines` lines of a log file ("" when it cannot be read).
std::string log_tail(const std::string& path, int lines);

}  // namespace osmo::testbed
