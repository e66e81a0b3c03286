// SPDX-License-Identifier: GPL-2.0-or-later
// The ptrace layer (our "compel"): seize a process, stop it, read and write its registers, and
// make it execute system calls on our behalf ("injection"). Every operation returns a checked
// result; a Tracee that goes out of scope always releases the process: it detaches (dump: the
// original keeps running) or kills it (restore: a half-built process must not survive).
//
// Injection needs a `syscall` instruction in the tracee. Two gates are supported:
//  - kSyscallStops: any `syscall` instruction (found in [vdso] at dump); we run it under
//    PTRACE_SYSCALL and collect the result at the syscall-exit stop (two stops per call);
//  - kInt3: our own trampoline `syscall; int3` (restore); one SIGTRAP stop per call.
// All signals stay blocked (PTRACE_SETSIGMASK) while we inject, and orig_rax is -1 so the
// kernel never applies syscall-restart logic to our register values. An int3 whose SIGTRAP is
// blocked or ignored makes the kernel reset SIGTRAP's disposition to SIG_DFL
// (force_sig_info_to_task): the dump reads SIGTRAP's disposition before its first int3, and
// both sides set it back after their last one, through syscall stops (syscall_no_trap).
//
// Every wait for the stop an injection expects goes through one loop (Tracee::wait_for) that
// tells the expected stop from the others and resumes past them:
//  - a PTRACE_EVENT_STOP trap: PTRACE_INTERRUPT left one pending (see seize_and_stop: a second
//    interrupt sent while the tracee was already stopping traps once more on the next resume),
//    or a group-stop notification;
//  - a signal-delivery-stop for a signal the mask cannot block (SIGSTOP) or that the kernel
//    unblocked (a SIGTRAP sent by someone else; int3 itself unblocks SIGTRAP): the signal is
//    taken off, remembered, and sent again once the process is released (detach), so it is
//    neither lost nor able to disturb the injection.
// Without this loop a stale interrupt trap was taken for the result of an injected syscall
// ("stopped by signal 5 instead of a syscall stop for syscall 9", seen under a fast itimer).
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <csignal>
#include <cstdint>
#include <vector>

#include "base/result.hpp"

namespace osmo::ckpt {

enum class GateKind { kSyscallStops, kInt3 };

// Machine code we place in the tracee (dump: in a scratch mapping; restore: in the trampoline):
//   offset 0:  syscall; int3                       (the kInt3 gate)
//   offset 16: batch executor: for each 64-byte entry {nr, a1..a6, result} at r12, r13 entries:
//              run it, store rax in result, stop at the first -errno; then int3.
// One ptrace round trip per batch instead of two per syscall: on this VM a stop/resume round
// trip costs ~0.3-0.6 ms (waking an idle vCPU), so per-syscall injection would dominate.
const std::vector<std::uint8_t>& injected_code();
inline constexpr std::uint64_t kExecutorOffset = 16;
inline constexpr std::size_t kBatchEntryBytes = 64;

struct SyscallReq {
  long nr = 0;
  std::uint64_t a[6] = {0, 0, 0, 0, 0, 0};
  const char* what = "";
};

class Tracee {
 public:
  enum class OnRelease { kDetach, kKill };

  // PTRACE_SEIZE + PTRACE_INTERRUPT, then waits for the interrupt stop. Signals that arrive
  // first are taken off the thread (their siginfo appended to *stolen) so the caller can queue
  // them back: nothing is lost.
  static Result<Tracee> seize_and_stop(pid_t pid, OnRelease on_release, bool exit_kill,
                                       std::vector<siginfo_t>* stolen);

  Tracee(Tracee&& o) noexcept;
  Tracee& operator=(Tracee&&) = delete;
  Tracee(const Tracee&) = delete;
  ~Tracee();

  pid_t pid() const { return pid_; }

  Result<user_regs_struct> get_regs();
  Status set_regs(const user_regs_struct& r);
  Result<std::vector<std::uint8_t>> get_xstate();
  Status set_xstate(const std::vector<std::uint8_t>& x);
  Result<std::uint64_t> get_sigmask();
  Status set_sigmask(std::uint64_t mask);

  void set_gate(std::uint64_t addr, GateKind kind) {
    gate_ = addr;
    gate_kind_ = kind;
  }
  // Runs syscall `nr` in the tracee; returns the raw result (negative errno on failure).
  Result<long> syscall(long nr, std::uint64_t a1 = 0, std::uint64_t a2 = 0, std::uint64_t a3 = 0,
                       std::uint64_t a4 = 0, std::uint64_t a5 = 0, std::uint64_t a6 = 0);
  // Same, but fails with a message naming the call when the result is a -errno.
  Result<long> syscall_ok(const char* what, long nr, std::uint64_t a1 = 0, std::uint64_t a2 = 0,
                          std::uint64_t a3 = 0, std::uint64_t a4 = 0, std::uint64_t a5 = 0,
                          std::uint64_t a6 = 0);
  void set_executor(std::uint64_t code, std::uint64_t table, std::size_t max_entries) {
    exec_code_ = code;
    exec_table_ = table;
    exec_max_ = max_entries;
  }
  // Runs the syscalls in order through the executor; fails at the first that returns -errno,
  // naming it. Returns every result.
  Result<std::vector<long>> syscall_batch(const std::vector<SyscallReq>& reqs);
  // Asynchronous form: starts a batch of at most max_entries and returns while the tracee runs
  // it (we may meanwhile use process_vm_* on it, never ptrace); finish_batch() waits for it.
  Status start_batch(const std::vector<SyscallReq>& reqs);
  Result<std::vector<long>> finish_batch();
  bool batch_running() const { return async_n_ > 0; }
  // Runs a syscall through PTRACE_SYSCALL stops at the gate's `syscall` instruction, without
  // reaching the int3 after it: for calls that must come after the last int3 (see
  // restore_sigtrap_action in signals.cpp), and for the last call of all (munmap of the
  // trampoline, syscall_final), after which the gate no longer exists.
  Result<long> syscall_no_trap(long nr, std::uint64_t a1 = 0, std::uint64_t a2 = 0, std::uint64_t a3 = 0,
                               std::uint64_t a4 = 0);
  Result<long> syscall_final(long nr, std::uint64_t a1, std::uint64_t a2) { return syscall_no_trap(nr, a1, a2); }

  // Signals taken off the tracee during injection (see the top of this file), sent again by
  // detach().
  const std::vector<siginfo_t>& deferred_signals() const { return deferred_; }
  // Adds a signal to send again at detach() (one taken off before the Tracee existed).
  void defer_signal(const siginfo_t& si) { deferred_.push_back(si); }

  Status write_mem(std::uint64_t addr, const void* p, std::size_t n);
  Status read_mem(std::uint64_t addr, void* p, std::size_t n);

  // Releases the process: detach (it continues from its current registers) or kill.
  Status detach();
  void kill_now();

 private:
  Tracee(pid_t pid, OnRelease r) : pid_(pid), on_release_(r) {}
  Result<int> wait_stop(const char* what);
  // The stop an injection waits for: a syscall-entry/exit stop (PTRACE_SYSCALL with
  // TRACESYSGOOD) or the SIGTRAP of our own int3 (si_code SI_KERNEL).
  enum class Want { kSyscallStop, kTrap };
  // Resumes with `request` (PTRACE_CONT or PTRACE_SYSCALL) and waits for `want`; any other
  // stop is handled as described at the top of this file and the tracee resumed again.
  Status resume_until(int request, Want want, const char* what);
  // The waiting half of resume_until, for a tracee already resumed with `request`.
  Status wait_for(int request, Want want, const char* what);
  pid_t pid_ = -1;
  OnRelease on_release_;
  std::uint64_t gate_ = 0;
  GateKind gate_kind_ = GateKind::kSyscallStops;
  std::uint64_t exec_code_ = 0, exec_table_ = 0;
  std::size_t exec_max_ = 0;
  std::vector<SyscallReq> async_reqs_;
  std::size_t async_n_ = 0;
  std::vector<siginfo_t> deferred_;
};

// PTRACE_GET_RSEQ_CONFIGURATION (struct ptrace_rseq_configuration; <linux/ptrace.h> clashes with
// <sys/ptrace.h>, so we keep our own copy of the layout).
struct RseqConfig {
  std::uint64_t rseq_abi_pointer;
  std::uint32_t rseq_abi_size;
  std::uint32_t signature;
  std::uint32_t flags;
  std::uint32_t pad;
};
Result<RseqConfig> get_rseq_config(pid_t pid);

// Applies the kernel's syscall-restart rule to registers captured at an interrupt stop, so they
// can be installed from any stop: a syscall interrupted with -ERESTART* is re-executed (rip back
// over the 2-byte `syscall`), -ERESTART_RESTARTBLOCK becomes restart_syscall. A completed
// syscall (any other rax) is left alone. orig_rax becomes -1 so the kernel does not act twice.
user_regs_struct with_syscall_restart(user_regs_struct r);

}  // namespace osmo::ckpt
