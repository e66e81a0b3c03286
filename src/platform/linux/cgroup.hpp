// SPDX-License-Identifier: GPL-2.0-or-later
// Creating and managing one cgroup of our own (a testbed node, a guest job): a CPU quota, its
// processes, its CPU usage, and removal. A logical cgroup is one directory per hierarchy: on
// cgroup v1 one each for the cpu, cpuacct, cpuset and memory controllers (those mounted; they may
// sit at different paths, e.g. when our memory cgroup is nested somewhere), on v2 one directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "platform/linux/cgroup_layout.hpp"

namespace osmo::platform {

// Absolute directories of one logical cgroup; an empty string = that controller is not used.
// On v2 all four name the same directory.
struct CgroupDirs {
  std::string cpu, cpuacct, cpuset, memory;

  // The distinct non-empty directories (co-mounted or v2 controllers share one).
  std::vector<std::string> distinct() const;
  bool empty() const { return distinct().empty(); }
};

// CgroupDirs for cgroup `path` ("/osmo-testbed/n1") in every available controller of `layout`.
CgroupDirs cgroup_dirs_at(const CgroupLayout& layout, const std::string& path);

// The CFS period we use when setting a quota: the kernel's default, 100 ms.
inline constexpr std::uint64_t kCfsPeriodUs = 100'000;

class Cgroup {
 public:
  // Creates the directories (and missing parents). On v1 each new cpuset level inherits its
  // parent's cpus and mems (a v1 cpuset with empty cpus accepts no task); on v2 the cpu, cpuset
  // and memory controllers are enabled in each parent's cgroup.subtree_control. A quota (in CPUs)
  // is set when given. Directories that already exist are adopted.
  static Result<Cgroup> create(const CgroupLayout& layout, CgroupDirs dirs,
                               std::optional<double> cpu_quota);
  // An existing cgroup (for listing, joining or removal); nothing is checked.
  static Cgroup open(const CgroupLayout& layout, CgroupDirs dirs);

  const CgroupDirs& dirs() const { return dirs_; }
  bool exists() const;

  Status set_cpu_quota(std::optional<double> cpus) const;
  // nullopt = no quota.
  Result<std::optional<double>> cpu_quota() const;
  // Cumulative CPU time of every task in the cgroup and its children.
  Result<std::uint64_t> cpu_usage_us() const;

  // Moves a process (all its threads) into the cgroup, in every hierarchy.
  Status add_process(pid_t pid) const;
  // Every process in the cgroup or its children, in any of its hierarchies (deduplicated).
  Result<std::vector<pid_t>> processes() const;
  // Sends `sig` to each of processes(); processes that vanished meanwhile are not an error.
  Status signal_all(int sig) const;
  // SIGKILLs everything inside until it is empty (bounded by `timeout`), then removes the
  // directories, children first. Idempotent: a missing cgroup is fine.
  Status remove(std::chrono::milliseconds timeout) const;

 private:
  Cgroup(CgroupVersion v, CgroupDirs dirs) : version_(v), dirs_(std::move(dirs)) {}

  CgroupVersion version_;
  CgroupDirs dirs_;
};

}  // namespace osmo::platform
