// SPDX-License-Identifier: GPL-2.0-or-later
// Pure parsers for the procfs and cgroupfs text formats the platform layer reads. No I/O here,
// so every format is unit-tested on literal text (tests/platform/proc_parse_test.cpp).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
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

// /proc/PID/stat split into its fields, numbered from 1 as in proc(5): out[1] is the pid, out[2]
// the command name without its parentheses (it may itself contain spaces and parentheses, so it
// ends at the last ')'), out[3] the state, and so on; out[0] stays empty. Returns the number of
// the last field stored (fields past out.size() - 1 are not counted), 0 when the text has no
// "(name)". Views into `text`; allocates nothing.
std::size_t split_pid_stat(std::string_view text, std::span<std::string_view> out);

// The fields of /proc/PID/stat we need (times in clock ticks). Parsed without allocating when
// the text is good: the shepherd reads its own and its job's on the job start path.
struct PidStat {
  char state = '?';               // field 3: R, S, D, T, t, Z, X, I...
  std::uint64_t utime = 0, stime = 0, cutime = 0, cstime = 0;  // fields 14-17
  std::uint64_t start_ticks = 0;  // field 22: start time since boot
  std::int64_t rss_pages = 0;     // field 24
};
Result<PidStat> parse_pid_stat(std::string_view text);

// The lines of /proc/PID/status that we use. A line that is absent leaves its default (a process
// that is exiting loses some: has_* say whether the credential lines were there); a line that is
// present but malformed is an error.
struct PidStatus {
  char state = '?';
  int threads = 0;
  pid_t tracer_pid = 0;
  std::array<std::uint32_t, 4> uid{}, gid{};  // real, effective, saved, fs
  std::vector<std::uint32_t> groups;
  std::vector<pid_t> nspid;          // outermost first
  std::vector<pid_t> nspgid, nssid;  // process group and session, outermost first (0: not visible)
  std::uint32_t umask = 022;
  // Capability sets (CapInh, CapPrm, CapEff, CapBnd, CapAmb), bit N = capability N.
  std::uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  bool has_uid = false, has_gid = false, has_groups = false;
};
Result<PidStatus> parse_pid_status(std::string_view text);

// One mapping of /proc/PID/smaps: its range and its VmFlags, the two-letter names as the kernel
// writes them ("rd wr mr mw me ac sd"). The other lines of a mapping are not kept.
struct SmapsVma {
  std::uint64_t start = 0, end = 0;
  std::string vm_flags;
};
Result<std::vector<SmapsVma>> parse_smaps(std::string_view text);
// Whether a VmFlags text holds the flag `name` ("dp", "gd", ...) as a whole word.
bool has_vm_flag(std::string_view vm_flags, std::string_view name);

// Decimal pids separated by spaces or newlines (/proc/PID/task/TID/children): returns how many
// the text holds, of which the first out.size() are stored in out; nullopt when the text is not
// such a list. Allocates nothing.
std::optional<std::size_t> parse_pid_list(std::string_view text, std::span<pid_t> out);

// v2 cpu.max: "max 100000" or "QUOTA PERIOD". nullopt = no quota; else quota/period in CPUs.
Result<std::optional<double>> parse_cpu_max(std::string_view text);
// v1 cpu.cfs_quota_us (-1 = none) with cpu.cfs_period_us. nullopt = no quota.
Result<std::optional<double>> parse_cfs_quota(std::string_view quota_text,
                                              std::string_view period_text);
// v2 memory.max / v1 memory.limit_in_bytes: nullopt when unlimited ("max", or a v1 value of
// 2^62 or more, which is how v1 spells "no limit" rounded to the page size).
Result<std::optional<std::uint64_t>> parse_memory_limit(std::string_view text);

}  // namespace osmo::platform
