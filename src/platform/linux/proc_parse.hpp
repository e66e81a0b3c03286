// SPDX-License-Identifier: GPL-2.0-or-later
// Pure parsers for the procfs and cgroupfs text formats the platform layer reads. No I/O here,
// so every format is unit-tested on literal text (tests/platform/proc_parse_test.cpp).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace osmo::platform {

// A kernel CPU list such as "0-3,8,10-11" (cpuset.cpus, Cpus_allowed_list, /sys/.../online).
// The empty string is the empty set.
Result<std::vector<int>> parse_cpu_list(std::string_view text);

// The value of "key value..." or "key: value kB" lines (cpu.stat, memory.stat, /proc/meminfo,
// /proc/stat, /proc/PID/status): the first number after the key, or nullopt when absent.
std::optional<std::uint64_t> find_keyed_u64(std::string_view text, std::string_view key);
// The rest of the line after "key:" (trimmed), e.g. Cpus_allowed_list in /proc/PID/status.
std::optional<std::string> find_keyed_text(std::string_view text, std::string_view key);

// /proc/stat: procs_running and the busy time of the aggregate "cpu" line in clock ticks
// (user + nice + system + irq + softirq; idle, iowait and steal are not our work).
struct ProcStat {
  std::uint64_t procs_running = 0;
  std::uint64_t busy_ticks = 0;
};
Result<ProcStat> parse_proc_stat(std::string_view text);

// One line of /proc/PID/cgroup: "4:cpu,cpuacct:/a/b" (v1) or "0::/a/b" (v2).
struct CgroupMembership {
  int hierarchy_id = 0;
  std::vector<std::string> controllers;  // empty for the v2 line; "name=systemd" kept as is
  std::string path;
};
Result<std::vector<CgroupMembership>> parse_proc_cgroup(std::string_view text);

// The fields of /proc/PID/stat we need. The command name may contain spaces and parentheses,
// so fields are counted from the last ')'.
struct PidStat {
  char state = '?';               // R, S, D, T, t, Z, X, I...
  std::uint64_t start_ticks = 0;  // field 22: start time since boot, in clock ticks
};
Result<PidStat> parse_pid_stat(std::string_view text);

// v2 cpu.max: "max 100000" or "QUOTA PERIOD". nullopt = no quota; else quota/period in CPUs.
Result<std::optional<double>> parse_cpu_max(std::string_view text);
// v1 cpu.cfs_quota_us (-1 = none) with cpu.cfs_period_us. nullopt = no quota.
Result<std::optional<double>> parse_cfs_quota(std::string_view quota_text,
                                              std::string_view period_text);
// v2 memory.max / v1 memory.limit_in_bytes: nullopt when unlimited ("max", or a v1 value of
// 2^62 or more, which is how v1 spells "no limit" rounded to the page size).
Result<std::optional<std::uint64_t>> parse_memory_limit(std::string_view text);

}  // namespace osmo::platform
