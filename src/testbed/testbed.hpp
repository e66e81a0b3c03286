// SPDX-License-Identifier: GPL-2.0-or-later
// The testbed's operations: up, down, list, exec, and the node controls the cluster tests use
// (stop = SIGKILL the daemon, start = the same node again, pause/resume = SIGSTOP/SIGCONT).
// Each takes the state root so tests and tools can point it anywhere; the CLI passes
// default_state_root().
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "testbed/layout.hpp"
#include "testbed/node_daemon.hpp"
#include "testbed/state.hpp"

namespace osmo::testbed {

struct UpOptions {
  int nodes = 3;
  std::optional<double> cpus_per_node;  // a CFS quota per node; none = no limit
  bool loopback = false;                // 127.0.0.1, ports base.., no namespaces
  std::uint16_t base_port = kDefaultBasePort;
  int timeout_ms = 15000;  // for all control sockets together
  std::string instance;    // empty: the default instance (layout.hpp)
};

// Makes the testbed. On any failure everything made so far is removed again (after printing
// what went wrong, with the failing daemon's log tail).
Status testbed_up(const std::string& root, const UpOptions& options, std::ostream& out);
// Removes every namespace, cgroup, process and file of the testbed, including leftovers of a
// crashed earlier run found by name. Idempotent; prints what it removed.
// Removes the instance's daemons, processes, cgroups, namespaces and files (never another
// instance's).
Status testbed_down(const std::string& root, std::string_view instance, std::ostream& out);

struct NodeStatus {
  NodeRecord node;
  NodeState state = NodeState::kStopped;
  std::optional<std::int32_t> pid;
  std::optional<double> cpu_quota;  // as set in the node's cgroup
  std::string socket;
};
Result<std::vector<NodeStatus>> testbed_list(const std::string& root);
Result<TestbedState> testbed_state(const std::string& root);

Status testbed_stop(const std::string& root, const std::string& node, bool whole_node);
Status testbed_start(const std::string& root, const std::string& node, int timeout_ms);
Status testbed_pause(const std::string& root, const std::string& node);
Status testbed_resume(const std::string& root, const std::string& node);

// Replaces this process with argv run in the node's namespace and cgroup, with OSMO_SOCKET and
// OSMO_TESTBED_NODE set. Returns only on failure: 127 when the program is not found, 126 when it
// cannot be run, 2 for a bad node; the message is in *error.
int testbed_exec(const std::string& root, const std::string& node,
                 const std::vector<std::string>& argv, std::string* error);

}  // namespace osmo::testbed
