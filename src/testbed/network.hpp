// SPDX-License-Identifier: GPL-2.0-or-later
// The testbed's private network: one namespace holding a bridge, one namespace per node, a veth
// pair from each node to the bridge. The root namespace has no interface on it, so nothing the
// nodes send can leave the machine, and nothing outside can reach them.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"

namespace osmo::testbed {

// Creates the bridge namespace (osmo-tb-br) with br0 and lo up.
Status create_bridge_network();
// Creates node k's namespace, its veth pair to the bridge, its address, and brings lo and eth0 up.
Status add_node_network(int k);
// Deletes every namespace whose name starts with osmo-tb- (nodes first, the bridge last);
// the names removed are appended to *removed. Idempotent.
Status remove_testbed_networks(std::vector<std::string>* removed);

}  // namespace osmo::testbed
