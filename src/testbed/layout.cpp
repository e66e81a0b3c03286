// SPDX-License-Identifier: GPL-2.0-or-later
// Testbed names, addresses and paths (see layout.hpp).
#include "testbed/layout.hpp"

#include <unistd.h>

#include <cstdlib>

#include "platform/linux/sysfs_io.hpp"

namespace osmo::testbed {

std::string node_name(int k) {
  return "n" + std::to_string(k);
}

Result<int> parse_node_name(std::string_view name) {
  std::uint64_t k = 0;
  if (name.size() < 2 || name[0] != 'n' || !platform::parse_u64(name.substr(1), &k) || k < 1 ||
      k > static_cast<std::uint64_t>(kMaxNodes) || name.substr(1) != std::to_string(k))
    return make_error("'{}' is not a node name (n1, n2, ...)", name);
  return static_cast<int>(k);
}

std::string node_netns(int k) {
  return std::string(kNetnsPrefix) + node_name(k);
}

std::string bridge_port_device(int k) {
  return "v" + std::to_string(k);
}

std::string node_address(int k, bool loopback) {
  return loopback ? std::string("127.0.0.1") : std::string(kSubnetPrefix) + std::to_string(k);
}

std::uint16_t node_port(int k, bool loopback, std::uint16_t base_port) {
  return loopback ? static_cast<std::uint16_t>(base_port + k - 1) : base_port;
}

std::string default_state_root() {
  if (::geteuid() == 0) return "/run/osmo/testbed";
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && *xdg == '/') return std::string(xdg) + "/osmo-testbed";
  return "/tmp/osmo-testbed-" + std::to_string(::getuid());
}

NodePaths node_paths(const std::string& root, const std::string& name) {
  NodePaths p;
  p.dir = root + "/" + name;
  p.socket = p.dir + "/osmod.sock";
  p.state_dir = p.dir + "/state";
  p.log = p.dir + "/osmod.log";
  p.pid_file = p.dir + "/osmod.pid";
  return p;
}

}  // namespace osmo::testbed
