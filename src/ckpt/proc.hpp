// SPDX-License-Identifier: GPL-2.0-or-later
// Readers for /proc/PID files the engine inspects before and while it holds a process:
// status, stat, maps, fd, fdinfo. Pure parsing where possible, so the parsers are unit-testable.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "platform/linux/pidfd.hpp"
#include "platform/linux/proc_parse.hpp"
#include "platform/linux/sysfs_io.hpp"

namespace osmo::ckpt {

// Whole files: the platform's reader ("cannot open PATH" / "cannot read PATH" with errno).
using platform::read_text_file;
Result<std::string> read_link(const std::string& path);

// /proc/PID/status (platform/linux/proc_parse.hpp), of a process the engine may take: one with
// Threads and NSpid lines, which every live process has.
using ProcStatus = platform::PidStatus;
Result<ProcStatus> parse_status(std::string_view text);
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

// The pid (in our pid namespace) of the process a pidfd refers to (platform/linux/pidfd.hpp).
using platform::pid_of_pidfd;

}  // namespace osmo::ckpt
