// SPDX-License-Identifier: GPL-2.0-or-later
// Testbed names, addresses and paths (see layout.hpp).
#include "testbed/layout.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

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
  return node_netns("", k);
}

Status check_instance_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxInstanceName ||
      !std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }))
    return make_error("'{}' is not an instance name (1 to {} of a-z and 0-9)", name, kMaxInstanceName);
  return ok_status();
}

std::string netns_prefix(std::string_view instance) {
  std::string p = kNetnsPrefix;
  if (!instance.empty()) {
    p.append(instance);
    p.push_back('-');
  }
  return p;
}

std::string node_netns(std::string_view instance, int k) {
  return netns_prefix(instance) + node_name(k);
}

std::string bridge_netns(std::string_view instance) {
  return netns_prefix(instance) + "br";
}

bool is_instance_netns(std::string_view instance, std::string_view netns) {
  const std::string prefix = netns_prefix(instance);
  if (netns.substr(0, prefix.size()) != prefix) return false;
  std::string_view rest = netns.substr(prefix.size());
  return rest == "br" || parse_node_name(rest).ok();
}

std::string cgroup_parent_name(std::string_view instance) {
  std::string p = kCgroupParentName;
  if (!instance.empty()) {
    p.push_back('-');
    p.append(instance);
  }
  return p;
}

std::string instance_state_root(std::string_view instance) {
  std::string root = default_state_root();
  if (!instance.empty()) {
    root.push_back('-');
    root.append(instance);
  }
  return root;
}

// The instance's subnet: 0 for the default, else 1..250 from its name, so that an address tells
// the instance. Instances' networks never touch (each has its own bridge namespace), so two names
// that map to one subnet would still work.
int instance_subnet(std::string_view instance) {
  if (instance.empty()) return 0;
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (char c : instance) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return 1 + static_cast<int>(h % kMaxInstanceSubnet);
}

std::string node_address(int subnet, int k, bool loopback) {
  if (loopback) return "127.0.0.1";
  return fmt::format("10.77.{}.{}", subnet, k);
}

std::string bridge_port_device(int k) {
  return "v" + std::to_string(k);
}

std::string node_address(int k, bool loopback) {
  return node_address(0, k, loopback);
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
