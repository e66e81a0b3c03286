// SPDX-License-Identifier: GPL-2.0-or-later
// The testbed's private network: one namespace holding a bridge, one namespace per node, a veth
// pair from each node to the bridge. The root namespace has no interface on it, so nothing the
// nodes send can leave the machine, and nothing outside can reach them.
#pragma once

#include <string>
#include <vector>

#include <string_view>

#include "base/result.hpp"

namespace osmo::testbed {

// Creates the instance's bridge namespace (osmo-tb-[NAME-]br) with br0 and lo up.
Status create_bridge_network(std::string_view instance);
// Creates node k's namespace, its veth pair to the bridge, its address 10.77.<subnet>.k, and
// brings lo and eth0 up.
Status add_node_network(std::string_view instance, int subnet, int k);
// Deletes every namespace of the instance (is_instance_netns: nodes first, the bridge last, never
// another instance's); the names removed are appended to *removed. Idempotent.
Status remove_testbed_networks(std::string_view instance, std::vector<std::string>* removed);

}  // namespace osmo::testbed
