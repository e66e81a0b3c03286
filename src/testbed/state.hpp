// SPDX-License-Identifier: GPL-2.0-or-later
// The testbed's record of what it made (testbed.json in the state root). It is written before
// anything is created, so that `down` after a crash of `up` knows what to look for; `down` also
// scans by name prefix, so a lost or damaged record never leaves anything behind.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "platform/linux/cgroup.hpp"

namespace osmo::testbed {

struct NodeRecord {
  std::string name;     // "n1"
  std::string address;  // "10.77.0.1" or "127.0.0.1"
  std::uint16_t port = 0;
  std::string netns;            // empty in loopback mode
  platform::CgroupDirs cgroup;  // all empty without cgroups (loopback without root)
};

struct TestbedState {
  std::string instance;  // empty: the default instance
  int subnet = 0;        // 10.77.<subnet>.0/24 (namespaces only)
  bool loopback = false;
  std::uint16_t base_port = 0;
  std::optional<double> cpus_per_node;
  std::string daemon_override;         // OSMO_TESTBED_DAEMON at `up`, reused by `start`
  platform::CgroupDirs cgroup_parent;  // the osmo-testbed directories holding the nodes'
  std::vector<NodeRecord> nodes;

  const NodeRecord* find(const std::string& name) const;
};

std::string encode_state(const TestbedState& state);
Result<TestbedState> decode_state(const std::string& text);

// Written atomically (temporary file + rename).
Status save_state(const std::string& path, const TestbedState& state);
Result<TestbedState> load_state(const std::string& path);

}  // namespace osmo::testbed
