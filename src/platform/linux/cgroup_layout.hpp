// SPDX-License-Identifier: GPL-2.0-or-later
// Where the cgroup hierarchies of this machine live and how a cgroup path ("/a/b", as written in
// /proc/PID/cgroup) maps to a directory for a given controller. Two layouts are supported:
//   v1 (also "hybrid"): one mount per controller under ROOT/<controller> (ROOT/cpu,
//       ROOT/cpuacct, ROOT/cpuset, ROOT/memory; "cpu,cpuacct" co-mounts work through the usual
//       symlinks). An empty v2 hierarchy at ROOT/unified is ignored.
//   v2 (pure unified): ROOT itself is the v2 mount (it has cgroup.controllers).
// The root is injectable so that tests run on fake trees in temporary directories.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "platform/linux/proc_parse.hpp"

namespace osmo::platform {

inline constexpr const char* kDefaultCgroupRoot = "/sys/fs/cgroup";

enum class CgroupVersion { kV1, kV2 };

class CgroupLayout {
 public:
  // Fails when ROOT is neither a v2 mount nor holds any v1 controller directory.
  static Result<CgroupLayout> detect(std::string root = kDefaultCgroupRoot);

  CgroupVersion version() const { return version_; }
  const std::string& root() const { return root_; }
  int version_number() const { return version_ == CgroupVersion::kV2 ? 2 : 1; }

  // Whether `controller` ("cpu", "cpuacct", "cpuset", "memory") is usable: v1 = mounted;
  // v2 = listed in the root's cgroup.controllers ("cpuacct" counts as "cpu" on v2).
  bool has_controller(std::string_view controller) const;
  // Mount directory of the hierarchy that carries `controller` (v2: the root).
  std::string mount_dir(std::string_view controller) const;
  // Directory of cgroup `path` ("/" or "/a/b") in the hierarchy of `controller`.
  std::string dir(std::string_view controller, std::string_view path) const;

  // The cgroup path of a process for `controller`, from its parsed /proc/PID/cgroup.
  std::optional<std::string> path_of(const std::vector<CgroupMembership>& memberships,
                                     std::string_view controller) const;

 private:
  CgroupLayout(CgroupVersion v, std::string root, std::vector<std::string> v2_controllers)
      : version_(v), root_(std::move(root)), v2_controllers_(std::move(v2_controllers)) {}

  CgroupVersion version_;
  std::string root_;
  std::vector<std::string> v2_controllers_;
};

// Reads and parses PROC/<pid>/cgroup ("self" for the caller).
Result<std::vector<CgroupMembership>> read_proc_cgroup(const std::string& proc_root,
                                                       const std::string& pid);

}  // namespace osmo::platform
