// SPDX-License-Identifier: GPL-2.0-or-later
// pidfds: a file descriptor that names one process for as long as it is open, whatever happens to
// its pid. Every part that signals a process it did not just fork (`osmo kill`, the shepherd's
// signals to its job, the testbed's daemons), watches one die (migration's target daemon) or takes
// an fd out of one (the engine) goes through here instead of calling the syscalls itself.
//
// These are thin and errno-based, like the syscalls (glibc 2.36 has no wrappers for all of them):
// each caller says in its own words what failed. To signal a process known by pid and start time,
// see pin_process and signal_process in process.hpp.
#pragma once

#include <sys/types.h>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace osmo::platform {

// pidfd_send_signal's flag for "the process group this pidfd's process leads" (Linux 6.9); older
// uapi headers lack it.
inline constexpr unsigned kPidfdSignalProcessGroup = 1u << 2;

// pidfd_open(2), close-on-exec: invalid with errno set on failure (ESRCH: no such process).
UniqueFd pidfd_open(pid_t pid);
// pidfd_send_signal(2): 0, or -1 with errno (ESRCH once the process has exited).
int pidfd_signal(int pidfd, int sig, unsigned flags = 0);
// pidfd_getfd(2): our own copy of the target's fd `target_fd`, close-on-exec; invalid with errno.
UniqueFd pidfd_getfd(int pidfd, int target_fd);
// pidfd_open then pidfd_getfd, for a single fd: invalid with the errno of the step that failed.
UniqueFd take_fd(pid_t pid, int target_fd);

// The pid (in our pid namespace) of the process a pidfd refers to, from /proc/self/fdinfo.
Result<pid_t> pid_of_pidfd(int pidfd);

}  // namespace osmo::platform
