// SPDX-License-Identifier: GPL-2.0-or-later
// Readers for /proc/PID files the engine inspects before and while it holds a process:
// status, stat, maps, fd, fdinfo. Pure parsing where possible, so the parsers are unit-testable.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace osmo::ckpt {

Result<std::string> read_text_file(const std::string& path);
Result<std::string> read_link(const std::string& path);

struct ProcStatus {
  char state = '?';
  int threads = 0;
  pid_t tracer_pid = 0;
  std::array<std::uint32_t, 4> uid{}, gid{};  // real, effective, saved, fs
  std::vector<std::uint32_t> groups;
  std::vector<pid_t> nspid;  // outermost first
  std::vector<pid_t> nspgid, nssid;  // process group and session, outermost first (0: not visible)
  std::uint32_t umask = 022;
  // Capability sets (CapInh, CapPrm, CapEff, CapBnd, CapAmb), bit N = capability N.
  std::uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
};
Result<ProcStatus> parse_status(const std::string& text);
Result<ProcStatus> read_status(pid_t pid);

struct MapsEntry {
  std::uint64_t start = 0, end = 0;
  bool r = false, w = false, x = false, shared = false;
  std::uint64_t offset = 0;
  std::uint32_t dev_major = 0, dev_minor = 0;
  std::uint64_t inode = 0;
  std::string name;  // path, [heap], [stack], [vdso], ... or empty
  bool deleted() const;
  std::string path_without_deleted() const;
};
Result<std::vector<MapsEntry>> parse_maps(const std::string& text);
Result<std::vector<MapsEntry>> read_maps(pid_t pid);

// The fields of /proc/PID/stat numbered from 1 as in proc(5); index 0 is unused.
Result<std::vector<std::string>> read_stat_fields(pid_t pid);

struct FdInfo {
  std::uint64_t pos = 0;
  std::uint32_t flags = 0;  // octal "flags:" line, includes O_CLOEXEC
};
Result<FdInfo> parse_fdinfo(const std::string& text);
Result<std::vector<int>> list_fds(pid_t pid);

// The pid (in our pid namespace) of the process a pidfd refers to, from /proc/self/fdinfo.
Result<pid_t> pid_of_pidfd(int pidfd);

}  // namespace osmo::ckpt
