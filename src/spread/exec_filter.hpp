// SPDX-License-Identifier: GPL-2.0-or-later
// The seccomp user-notification filter that makes every execve/execveat of a job's processes a
// question to the node's spread supervisor (supervisor.hpp): stay here, or start the program on
// another node as a sub-job with the caller left behind as its deputy (deputy.hpp).
//
// osmo init installs it on itself just before it clones the job (init never execs again), so the
// job and everything it starts inherit it; no process of the job can remove a seccomp filter.
// The filter lets an execve through without asking when its fourth argument register (unused by
// execve) carries the job's random *bypass cookie*: the job's own first exec (osmo run already
// placed it) and the deputy's exec, which the supervisor sets up itself, pass without a round
// trip. Knowing the cookie only lets a process skip spreading, which it may anyway (--no-spread).
#pragma once

#include <cstdint>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace osmo::spread {

// Installs the filter on the calling thread (needs CAP_SYS_ADMIN or no_new_privs; init is root)
// and returns the notification listener. x86_64 only: elsewhere an error (the job then runs
// without spreading).
Result<UniqueFd> install_exec_filter(std::uint64_t cookie);

// execve(path, argv, envp) that passes the filter without a notification. Async-signal-safe
// (a raw syscall); returns only on failure, with errno set.
int exec_bypass(const char* path, char* const argv[], char* const envp[], std::uint64_t cookie);

// execvp's search of PATH (from `envp`, default "/bin:/usr/bin") with exec_bypass, for the
// job's first exec; a file without "#!" that the kernel refuses (ENOEXEC) runs under /bin/sh as
// execvp does. Async-signal-safe, no allocation (runs between a CLONE_VM clone and its exec).
// Returns only on failure, with errno as execvp would leave it.
int execvp_bypass(const char* file, char* const argv[], char* const envp[], std::uint64_t cookie);

}  // namespace osmo::spread
