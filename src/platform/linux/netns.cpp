// SPDX-License-Identifier: GPL-2.0-or-later
// Named network namespaces (see netns.hpp).
#include "platform/linux/netns.hpp"

#include <fcntl.h>
#include <sched.h>

#include <algorithm>

#include "platform/linux/command.hpp"
#include "platform/linux/sysfs_io.hpp"

namespace osmo::platform {

std::string netns_path(const std::string& name) {
  return std::string(kNetnsDir) + "/" + name;
}

bool netns_exists(const std::string& name) {
  return path_exists(netns_path(name));
}

Status create_netns(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos)
    return make_error("bad network namespace name '{}'", name);
  if (netns_exists(name)) return make_error("network namespace {} already exists", name);
  return run_checked({"ip", "netns", "add", name});
}

Status delete_netns(const std::string& name) {
  if (!netns_exists(name)) return ok_status();
  return run_checked({"ip", "netns", "delete", name});
}

Result<std::vector<std::string>> list_netns(const std::string& prefix) {
  std::vector<std::string> out;
  if (!is_directory(kNetnsDir)) return out;
  OSMO_ASSIGN_OR_RETURN(auto names, list_directory(kNetnsDir, /*only_dirs=*/false));
  for (auto& n : names)
    if (n.rfind(prefix, 0) == 0) out.push_back(std::move(n));
  std::sort(out.begin(), out.end());
  return out;
}

Result<UniqueFd> open_netns(const std::string& name) {
  UniqueFd fd(::open(netns_path(name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open network namespace {}", netns_path(name));
  return fd;
}

Status enter_netns(int fd, const std::string& name_for_errors) {
  if (::setns(fd, CLONE_NEWNET) != 0)
    return errno_error("setns into network namespace {}", name_for_errors);
  return ok_status();
}

Status ip_in_netns(const std::string& name, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ip"};
  if (!name.empty()) {
    argv.push_back("-n");
    argv.push_back(name);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return run_checked(argv);
}

}  // namespace osmo::platform
