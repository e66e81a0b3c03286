// SPDX-License-Identifier: GPL-2.0-or-later
// The testbed's private bridged network (see network.hpp).
#include "testbed/network.hpp"

#include <algorithm>
#include <optional>

#include "platform/linux/netns.hpp"
#include "testbed/layout.hpp"

namespace osmo::testbed {

using platform::ip_in_netns;

Status create_bridge_network() {
  OSMO_TRY(platform::create_netns(kBridgeNetns));
  OSMO_TRY(ip_in_netns(kBridgeNetns, {"link", "set", "lo", "up"}));
  OSMO_TRY(ip_in_netns(kBridgeNetns, {"link", "add", kBridgeDevice, "type", "bridge"}));
  return ip_in_netns(kBridgeNetns, {"link", "set", kBridgeDevice, "up"});
}

Status add_node_network(int k) {
  const std::string ns = node_netns(k);
  const std::string port = bridge_port_device(k);
  OSMO_TRY(platform::create_netns(ns));
  // Both ends are made in the bridge namespace and the node's end is moved in one step, so no
  // interface ever appears in the root namespace.
  OSMO_TRY(ip_in_netns(kBridgeNetns, {"link", "add", port, "type", "veth", "peer", "name",
                                      kNodeDevice, "netns", ns}));
  OSMO_TRY(ip_in_netns(kBridgeNetns, {"link", "set", port, "master", kBridgeDevice}));
  OSMO_TRY(ip_in_netns(kBridgeNetns, {"link", "set", port, "up"}));
  OSMO_TRY(ip_in_netns(ns, {"link", "set", "lo", "up"}));
  OSMO_TRY(
      ip_in_netns(ns, {"addr", "add", node_address(k, false) + "/" + std::to_string(kSubnetBits),
                       "dev", kNodeDevice}));
  return ip_in_netns(ns, {"link", "set", kNodeDevice, "up"});
}

Status remove_testbed_networks(std::vector<std::string>* removed) {
  OSMO_ASSIGN_OR_RETURN(auto names, platform::list_netns(kNetnsPrefix));
  // The bridge goes last: deleting a node's namespace drops its veth pair from the bridge.
  std::stable_partition(names.begin(), names.end(),
                        [](const std::string& n) { return n != kBridgeNetns; });
  std::optional<Error> first_error;
  for (const auto& n : names) {
    Status s = platform::delete_netns(n);
    if (s.ok()) {
      removed->push_back(n);
    } else if (!first_error) {
      first_error = s.error();
    }
  }
  if (first_error) return *first_error;
  return ok_status();
}

}  // namespace osmo::testbed
