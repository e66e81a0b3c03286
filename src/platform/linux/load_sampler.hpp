// SPDX-License-Identifier: GPL-2.0-or-later
// Load and capacity sampling for the daemon's load vector: how many tasks want a CPU, how many
// CPUs we may use, how fast they are, how much memory is free, and how much CPU time was used.
//
// Two scopes:
//   kMachine: the whole machine as this process sees it (procs_running in /proc/stat, the CPUs in
//             our affinity mask that are online, /proc/meminfo, busy time from /proc/stat).
//   kCgroup:  the cgroup this process lives in (a testbed node, a container): its runnable
//             tasks (recursively), its cpuset and CFS quota (including its ancestors'), its memory
//             limit and usage, and its CPU usage counter. cgroup v1 (also hybrid) and pure v2.
//
// Speed: the node's CPU speed relative to the cluster's reference CPU (1.0). It is configuration
// (SamplerOptions::speed), never measured: a clock rate ignores micro-architecture, and a speed
// that is not near 1.0 on ordinary nodes would skew every load figure (see load_sampler.cpp).
//
// The procfs, sysfs and cgroupfs roots are injectable for tests on fake trees.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "platform/linux/cgroup_layout.hpp"

namespace osmo::platform {

enum class LoadScope { kMachine, kCgroup };

struct LoadSample {
  double runnable = 0;  // tasks currently runnable (R state) in the scope, the sampler excluded
  double cpus = 0;      // effective CPUs: online ∩ cpuset, limited by the CFS quota
  double speed = 1.0;   // relative CPU speed (see above)
  std::uint64_t mem_free_mb = 0, mem_total_mb = 0;  // cgroup limit-usage, else MemAvailable/Total
  std::uint64_t cpu_usage_us = 0;                   // cumulative CPU time used by the scope
};

struct SamplerOptions {
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  std::string cgroup_root = kDefaultCgroupRoot;
  // Whose cgroup kCgroup samples: "self" or a pid (read from PROC/<pid>/cgroup)...
  std::string cgroup_of = "self";
  // ...unless a cgroup path ("/osmo-testbed/n1") is given, used for every controller.
  std::optional<std::string> cgroup_path;
  // The node's relative speed when set (> 0); 1.0 otherwise.
  std::optional<double> speed;
};

class LoadSampler {
 public:
  static Result<LoadSampler> create(LoadScope scope);
  static Result<LoadSampler> create(LoadScope scope, const SamplerOptions& options);

  Result<LoadSample> sample();
  // e.g. "cgroup v1 /osmo-testbed/n1 (cpu quota 0.5)", "machine (2 cpus)".
  std::string describe() const;

  LoadScope scope() const { return scope_; }
  // The CFS quota in CPUs that limits the scope (the smallest along the cgroup's ancestry), if any.
  std::optional<double> cpu_quota() const;

 private:
  LoadSampler() = default;

  Result<double> count_runnable_machine(std::uint64_t procs_running) const;
  Result<double> count_runnable_cgroup() const;
  Status collect_tids(const std::string& dir, std::vector<std::uint64_t>* tids, int depth) const;
  Result<double> effective_cpus() const;
  Result<std::optional<double>> read_quota() const;
  Status fill_memory(LoadSample* s) const;
  Result<std::uint64_t> cgroup_cpu_usage_us() const;

  LoadScope scope_ = LoadScope::kMachine;
  SamplerOptions opt_;
  double speed_ = 1.0;
  std::optional<CgroupLayout> layout_;
  // kCgroup: the cgroup path per controller; empty when that controller is not available.
  std::string cpu_path_, cpuacct_path_, cpuset_path_, memory_path_;
  std::optional<double> quota_at_create_;
};

// kCgroup when the cgroup we live in (or one of its ancestors) has a CPU quota, else kMachine.
LoadScope resolve_auto_scope();
LoadScope resolve_auto_scope(const SamplerOptions& options);

}  // namespace osmo::platform
