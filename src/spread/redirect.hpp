// SPDX-License-Identifier: GPL-2.0-or-later
// Turning an exec into the exec of the deputy, in the calling process itself, so that it keeps
// its pid, parent, process group, session and fds: the seccomp notification cannot change a
// syscall's arguments, so the supervisor briefly traces the caller instead.
//
//   caller (blocked in seccomp wait)      supervisor
//   execve(path, argv, envp) ──notify──►  decides: remote
//                                         PTRACE_SEIZE + PTRACE_INTERRUPT
//   wait interrupted: -ERESTARTSYS  ◄──   (the notification is withdrawn by the kernel)
//   ptrace stop (PTRACE_EVENT_STOP)       GETREGS; writes the deputy's path and argv below the
//                                         stack pointer (process_vm_writev); SETREGS rdi, rsi,
//                                         r10 = bypass cookie; PTRACE_DETACH
//   syscall restarted by the kernel:
//   execve(osmo, deputy argv, envp) ───── passes the filter (cookie): the deputy runs
//
// The scratch area lies below the red zone of the thread's own stack: nothing there is live (a
// vfork child's parent and other threads only use memory above their own stack pointers), and
// the exec replaces the memory anyway (for a vfork child, the parent's stack below the child's
// pointer is garbage to the parent). If anything fails before the registers are set, the
// registers stay as they were and the original exec is restarted: the caller then gets a fresh
// notification, which the supervisor must answer "stay" (RedirectOutcome::kRestarted).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace osmo::spread {

enum class RedirectOutcome {
  kRedirected,  // the caller now execs the deputy
  kRestarted,   // the caller restarts its original exec (answer its next notification "stay")
  kNotTouched,  // we could not trace it (traced already, gone): answer this notification "stay"
};

struct RedirectResult {
  RedirectOutcome outcome = RedirectOutcome::kNotTouched;
  std::string why;  // for kRestarted / kNotTouched
};

// Redirects thread `tid`, blocked in execve by a pending notification, to
// execve(new_argv[0], new_argv + `keep_argv`, its own envp), where `keep_argv` are pointers into
// the caller's memory (its original argv array entries) appended after `new_argv`'s strings.
RedirectResult redirect_exec(pid_t tid, const std::vector<std::string>& new_argv,
                             const std::vector<std::uint64_t>& keep_argv, std::uint64_t cookie);

}  // namespace osmo::spread
