// SPDX-License-Identifier: GPL-2.0-or-later
// Processes we start and later find again: detached daemons (double fork + setsid, own log
// file, pid file, optionally inside a network namespace and a cgroup), and a process identity
// (pid + start time) so that a recycled pid is never mistaken for ours and never signalled.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "platform/linux/cgroup.hpp"

namespace osmo::platform {

// A pid alone can be reused after the process dies; pid + start time (clock ticks since boot,
// /proc/PID/stat field 22) names one process for the life of the machine.
struct ProcessIdentity {
  pid_t pid = 0;
  std::uint64_t start_ticks = 0;
  bool operator==(const ProcessIdentity&) const = default;
};

Result<ProcessIdentity> identify_process(pid_t pid);

enum class ProcessState { kGone, kRunning, kStopped, kZombie };
// kGone when the pid is free or now belongs to another process; kStopped for SIGSTOP/traced.
ProcessState process_state(const ProcessIdentity& id);
const char* process_state_name(ProcessState s);

// A pidfd for the process `id` names: opened first, then the start time checked, so that from
// then on the fd refers to that one process even if the pid is recycled. A process that is gone,
// or a pid that now names another process, is an error with code ESRCH ("pid N is no longer the
// process we started").
Result<UniqueFd> pin_process(const ProcessIdentity& id);

// Sends `sig` only if `id` still names the same process (through pin_process, so the check and
// the signal refer to one process). "Already gone" is an error with code ESRCH.
Status signal_process(const ProcessIdentity& id, int sig);

// Pid file: "PID START_TICKS\n", written atomically (temporary file + rename).
Status write_pid_file(const std::string& path, const ProcessIdentity& id);
Result<ProcessIdentity> read_pid_file(const std::string& path);

struct DetachedSpawnOptions {
  std::string exe;                 // program to execve (not searched in PATH)
  std::vector<std::string> argv;   // argv[0] included
  std::vector<std::string> env;    // "KEY=VALUE" added to (or replacing in) our environment
  std::string log_path;            // stdout and stderr, appended; mode 0640; empty = /dev/null
  std::string pid_file;            // written once the process runs; empty = none
  std::string netns;               // named network namespace to run in; empty = ours
  const Cgroup* cgroup = nullptr;  // joined before exec; null = ours
  std::string cwd = "/";
  // Fds the program gets as 3, 4, ... in this order (e.g. a stream and a spec memfd); at most
  // kMaxPassFds. The caller keeps its own.
  std::vector<int> pass_fds;
};
inline constexpr std::size_t kMaxPassFds = 8;

// Starts a daemon that outlives us: fork, setsid, fork again (so it is no child of ours and can
// never reacquire a terminal), join the cgroup, enter the netns, redirect stdin from /dev/null
// and stdout/stderr to the log, place pass_fds at 3, 4, ..., close every other fd, exec. Returns once exec succeeded; any
// failure on the way (including exec's) is reported with its stage and errno.
Result<ProcessIdentity> spawn_detached(const DetachedSpawnOptions& options);

}  // namespace osmo::platform
