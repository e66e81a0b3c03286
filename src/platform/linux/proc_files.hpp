// SPDX-License-Identifier: GPL-2.0-or-later
// Reading a process's /proc files: stat, status and the children lists, for every part that looks
// at processes (the engine before it seizes one, the shepherd and `osmo ps` for jobs, the daemon
// for a caller's groups, migration for a job's tree). The formats are parsed by proc_parse.hpp;
// this file does the reading, with errors that name the file.
//
// read_small_file, read_pid_stat and process_start_ticks allocate nothing when they succeed: the
// shepherd calls them on a job's start path, where every fresh heap page costs a fault in a
// freshly forked process (docs/run.md, "Where the time goes").
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "platform/linux/proc_parse.hpp"

namespace osmo::platform {

// Reads a small file (a /proc entry) whole into `buf` with plain syscalls: the bytes read, empty
// if the file cannot be read, cut at `cap`.
std::string_view read_small_file(const char* path, char* buf, std::size_t cap);

// /proc/PID/stat. Errors: "cannot open /proc/PID/stat" with errno (ENOENT: no such process) or
// "/proc/PID/stat: bad ..." for text we cannot parse.
Result<PidStat> read_pid_stat(pid_t pid);
// Field 22 of /proc/PID/stat (start time in clock ticks since boot); 0 if the process is gone.
// With the pid it names one process for the life of the machine (see process.hpp).
std::uint64_t process_start_ticks(pid_t pid);

// /proc/PID/status; errors name the file.
Result<PidStatus> read_pid_status(pid_t pid);

// /proc/PID/smaps: the ranges and VmFlags of every mapping. Reading it walks the page tables
// (~40 ms per GiB mapped).
Result<std::vector<SmapsVma>> read_smaps(pid_t pid);

// The children of every thread of `pid` (/proc/PID/task/TID/children); empty when it is gone.
std::vector<pid_t> process_children(pid_t pid);

}  // namespace osmo::platform
