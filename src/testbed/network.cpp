// SPDX-License-Identifier: GPL-2.0-or-later
// The testbed's private bridged network (see network.hpp).
#include "testbed/network.hpp"

#include <algorithm>
#include <optional>

#include "platform/linux/netns.hpp"
#include "testbed/layout.hpp"

namespace osmo::testbed {

using platform::ip_in_netns;

Status create_bridge_network(std::string_view instance) {
  const std::string br = bridge_netns(instance);
  OSMO_TRY(platform::create_netns(br));
  OSMO_TRY(ip_in_netns(br, {"link", "set", "lo", "up"}));
  OSMO_TRY(ip_in_netns(br, {"link", "add", kBridgeDevice, "type", "bridge"}));
  return ip_in_netns(br, {"link", "set", kBridgeDevice, "up"});
}

Status add_node_network(std::string_view instance, int subnet, int k) {
  const std::string ns = node_netns(instance, k);
  const std::string br = bridge_netns(instance);
  const std::string port = bridge_port_device(k);
  OSMO_TRY(platform::create_netns(ns));
  // Both ends are made in the bridge namespace and the node's end is moved in one step, so no
  // interface ever appears in the root namespace.
  OSMO_TRY(ip_in_netns(br, {"link", "add", port, "type", "veth", "peer", "name", kNodeDevice, "netns", ns}));
  OSMO_TRY(ip_in_netns(br, {"link", "set", port, "master", kBridgeDevice}));
  OSMO_TRY(ip_in_netns(br, {"link", "set", port, "up"}));
  OSMO_TRY(ip_in_netns(ns, {"link", "set", "lo", "up"}));
  OSMO_TRY(
      ip_in_netns(ns, {"addr", "add", node_address(subnet, k, false) + "/" + std::to_string(kSubnetBits),
                       "dev", kNodeDevice}));
  return ip_in_netns(ns, {"link", "set", kNodeDevice, "up"});
}

Status remove_testbed_networks(std::string_view instance, std::vector<std::string>* removed) {
  OSMO_ASSIGN_OR_RETURN(auto all, platform::list_netns(netns_prefix(instance)));
  std::vector<std::string> names;
  for (auto& n : all)
    if (is_instance_netns(instance, n)) names.push_back(std::move(n));
  // The bridge goes last: deleting a node's namespace drops its veth pair from the bridge.
  const std::string br = bridge_netns(instance);
  std::stable_partition(names.begin(), names.end(), [&](const std::string& n) { return n != br; });
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
