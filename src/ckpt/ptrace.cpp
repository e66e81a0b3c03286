// SPDX-License-Identifier: GPL-2.0-or-later
// ptrace layer: seize/interrupt, register access, syscall injection, guaranteed release.
#include "ckpt/ptrace.hpp"

#include <elf.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <string>

namespace osmo::ckpt {
namespace {

// Kernel-internal restart codes (include/linux/errno.h), visible in rax at an interrupt stop.
constexpr long kERestartSys = 512;
constexpr long kERestartNoIntr = 513;
constexpr long kERestartNoHand = 514;
constexpr long kERestartRestartBlock = 516;

constexpr int kStopInterrupt = (SIGTRAP | (PTRACE_EVENT_STOP << 8));

}  // namespace

user_regs_struct with_syscall_restart(user_regs_struct r) {
  auto orig = static_cast<long>(r.orig_rax);
  auto rax = static_cast<long>(r.rax);
  if (orig >= 0) {
    if (rax == -kERestartSys || rax == -kERestartNoIntr || rax == -kERestartNoHand) {
      r.rax = r.orig_rax;
      r.rip -= 2;
    } else if (rax == -kERestartRestartBlock) {
      r.rax = SYS_restart_syscall;
      r.rip -= 2;
    }
  }
  r.orig_rax = static_cast<unsigned long long>(-1);
  return r;
}

Result<Tracee> Tracee::seize_and_stop(pid_t pid, OnRelease on_release, bool exit_kill,
                                      std::vector<siginfo_t>* stolen) {
  long opts = PTRACE_O_TRACESYSGOOD | (exit_kill ? PTRACE_O_EXITKILL : 0);
  if (ptrace(PTRACE_SEIZE, pid, nullptr, opts) != 0)
    return errno_error("cannot seize pid {} (PTRACE_SEIZE)", pid);
  Tracee t(pid, on_release);
  if (ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0)
    return errno_error("cannot stop pid {} (PTRACE_INTERRUPT)", pid);
  for (;;) {
    int status = 0;
    pid_t w = ::waitpid(pid, &status, __WALL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_error("cannot wait for pid {} to stop", pid);
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      t.pid_ = -1;
      return make_error("pid {} exited while being stopped", pid);
    }
    if (!WIFSTOPPED(status)) continue;
    if ((status >> 8) == kStopInterrupt) break;
    int sig = WSTOPSIG(status);
    if ((status >> 16) == PTRACE_EVENT_STOP) {
      // A group-stop notification (SIGSTOP/SIGTSTP...) rather than our interrupt: the process
      // was being stopped by job control. It is stopped now, which is all we need.
      break;
    }
    // A signal-delivery stop: keep the signal (the caller queues it back, or detach() sends it
    // again) and go on waiting.
    siginfo_t si{};
    if (ptrace(PTRACE_GETSIGINFO, pid, nullptr, &si) != 0)
      return errno_error("cannot read the siginfo of signal {} stopping pid {}", sig, pid);
    if (stolen != nullptr) stolen->push_back(si);
    else t.deferred_.push_back(si);
    // The interrupt may have been used up by this stop (any ptrace stop clears a pending
    // PTRACE_INTERRUPT) or may still be pending; we cannot tell, so we interrupt again. When
    // both trap, the second one shows up at the next resume and the injection loop skips it:
    //   tracer: INTERRUPT ......... CONT  INTERRUPT
    //   tracee:   signal stop (still pending) -> interrupt stop -> [next resume] stale stop
    if (ptrace(PTRACE_CONT, pid, nullptr, nullptr) != 0)
      return errno_error("cannot continue pid {} past signal {}", pid, sig);
    if (ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0)
      return errno_error("cannot stop pid {} (PTRACE_INTERRUPT)", pid);
  }
  return t;
}

const std::vector<std::uint8_t>& injected_code() {
  // Assembled from (intel syntax):
  //   gate: syscall; int3; nop x13
  //   loop: test r13,r13; jz done; mov rax,[r12]; mov rdi,[r12+8]; mov rsi,[r12+16];
  //         mov rdx,[r12+24]; mov r10,[r12+32]; mov r8,[r12+40]; mov r9,[r12+48]; syscall;
  //         mov [r12+56],rax; cmp rax,-4095; jae done; add r12,64; dec r13; jmp loop
  //   done: int3
  static const std::vector<std::uint8_t> kCode = {
      0x0f, 0x05, 0xcc, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
      0x4d, 0x85, 0xed, 0x74, 0x3a, 0x49, 0x8b, 0x04, 0x24, 0x49, 0x8b, 0x7c, 0x24, 0x08, 0x49, 0x8b,
      0x74, 0x24, 0x10, 0x49, 0x8b, 0x54, 0x24, 0x18, 0x4d, 0x8b, 0x54, 0x24, 0x20, 0x4d, 0x8b, 0x44,
      0x24, 0x28, 0x4d, 0x8b, 0x4c, 0x24, 0x30, 0x0f, 0x05, 0x49, 0x89, 0x44, 0x24, 0x38, 0x48, 0x3d,
      0x01, 0xf0, 0xff, 0xff, 0x73, 0x09, 0x49, 0x83, 0xc4, 0x40, 0x49, 0xff, 0xcd, 0xeb, 0xc1, 0xcc};
  return kCode;
}

Result<RseqConfig> get_rseq_config(pid_t pid) {
  constexpr int kGetRseqConfiguration = 0x420f;
  RseqConfig rc{};
  if (ptrace(static_cast<__ptrace_request>(kGetRseqConfiguration), pid, sizeof rc, &rc) < 0)
    return errno_error("cannot read the rseq configuration of pid {}", pid);
  return rc;
}

Tracee::Tracee(Tracee&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      on_release_(o.on_release_),
      gate_(o.gate_),
      gate_kind_(o.gate_kind_),
      exec_code_(o.exec_code_),
      exec_table_(o.exec_table_),
      exec_max_(o.exec_max_),
      async_reqs_(std::move(o.async_reqs_)),
      async_n_(std::exchange(o.async_n_, 0)),
      deferred_(std::move(o.deferred_)) {}

Tracee::~Tracee() {
  if (pid_ < 0) return;
  if (on_release_ == OnRelease::kKill) kill_now();
  else (void)detach();
}

Result<user_regs_struct> Tracee::get_regs() {
  user_regs_struct r{};
  if (ptrace(PTRACE_GETREGS, pid_, nullptr, &r) != 0)
    return errno_error("cannot read registers of pid {}", pid_);
  return r;
}
Status Tracee::set_regs(const user_regs_struct& r) {
  if (ptrace(PTRACE_SETREGS, pid_, nullptr, &r) != 0)
    return errno_error("cannot set registers of pid {}", pid_);
  return ok_status();
}
Result<std::vector<std::uint8_t>> Tracee::get_xstate() {
  std::vector<std::uint8_t> buf(64 * 1024);
  iovec iov{buf.data(), buf.size()};
  if (ptrace(PTRACE_GETREGSET, pid_, NT_X86_XSTATE, &iov) != 0)
    return errno_error("cannot read xstate of pid {} (PTRACE_GETREGSET NT_X86_XSTATE)", pid_);
  buf.resize(iov.iov_len);
  return buf;
}
Status Tracee::set_xstate(const std::vector<std::uint8_t>& x) {
  iovec iov{const_cast<std::uint8_t*>(x.data()), x.size()};
  if (ptrace(PTRACE_SETREGSET, pid_, NT_X86_XSTATE, &iov) != 0)
    return errno_error("cannot set xstate of pid {} ({} bytes)", pid_, x.size());
  return ok_status();
}
Result<std::uint64_t> Tracee::get_sigmask() {
  std::uint64_t m = 0;
  if (ptrace(PTRACE_GETSIGMASK, pid_, sizeof m, &m) != 0)
    return errno_error("cannot read signal mask of pid {}", pid_);
  return m;
}
Status Tracee::set_sigmask(std::uint64_t mask) {
  if (ptrace(PTRACE_SETSIGMASK, pid_, sizeof mask, &mask) != 0)
    return errno_error("cannot set signal mask of pid {}", pid_);
  return ok_status();
}

Result<int> Tracee::wait_stop(const char* what) {
  for (;;) {
    int status = 0;
    pid_t w = ::waitpid(pid_, &status, __WALL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_error("cannot wait for pid {} during {}", pid_, what);
    }
    if (WIFEXITED(status)) {
      pid_t p = std::exchange(pid_, -1);
      return make_error("pid {} exited with status {} during {}", p, WEXITSTATUS(status), what);
    }
    if (WIFSIGNALED(status)) {
      pid_t p = std::exchange(pid_, -1);
      return make_error("pid {} was killed by signal {} during {}", p, WTERMSIG(status), what);
    }
    if (WIFSTOPPED(status)) return status;
  }
}

Status Tracee::resume_until(int request, Want want, const char* what) {
  if (ptrace(static_cast<__ptrace_request>(request), pid_, nullptr, nullptr) != 0)
    return errno_error("cannot resume pid {} for {}", pid_, what);
  return wait_for(request, want, what);
}

Status Tracee::wait_for(int request, Want want, const char* what) {
  // Bounded: each round is a stop the tracee made; hundreds of foreign stops in one injection
  // mean something keeps signalling it, and we give up rather than spin.
  constexpr int kMaxForeignStops = 256;
  for (int foreign = 0;; foreign++) {
    if (foreign > kMaxForeignStops)
      return make_error("pid {}: more than {} foreign stops during {}", pid_, kMaxForeignStops, what);
    OSMO_ASSIGN_OR_RETURN(int st, wait_stop(what));
    int sig = WSTOPSIG(st);
    int event = st >> 16;
    if (want == Want::kSyscallStop && event == 0 && sig == (SIGTRAP | 0x80)) return ok_status();
    if (event == PTRACE_EVENT_STOP) {
      // A stale PTRACE_INTERRUPT trap (sig SIGTRAP) or a group-stop notification: nothing to
      // take off, the tracee just resumes where it stopped.
    } else if (event != 0) {
      return make_error("pid {} stopped with ptrace event {} during {}", pid_, event, what);
    } else if (sig == (SIGTRAP | 0x80)) {
      return make_error("pid {} made a syscall stop during {}, which expects a trap", pid_, what);
    } else {
      siginfo_t si{};
      if (ptrace(PTRACE_GETSIGINFO, pid_, nullptr, &si) != 0)
        return errno_error("cannot read the siginfo of signal {} stopping pid {} during {}", sig, pid_, what);
      if (want == Want::kTrap && sig == SIGTRAP && si.si_code == SI_KERNEL) return ok_status();  // our int3
      // A signal the mask let through; resuming with 0 takes it off, detach() sends it again.
      deferred_.push_back(si);
    }
    if (ptrace(static_cast<__ptrace_request>(request), pid_, nullptr, nullptr) != 0)
      return errno_error("cannot resume pid {} past a foreign stop (signal {}) during {}", pid_, sig, what);
  }
}

Result<long> Tracee::syscall(long nr, std::uint64_t a1, std::uint64_t a2, std::uint64_t a3,
                             std::uint64_t a4, std::uint64_t a5, std::uint64_t a6) {
  if (gate_ == 0) return make_error("internal: no syscall gate in pid {}", pid_);
  OSMO_ASSIGN_OR_RETURN(user_regs_struct r, get_regs());
  r.rip = gate_;
  r.rax = static_cast<unsigned long long>(nr);
  r.orig_rax = static_cast<unsigned long long>(-1);
  r.rdi = a1;
  r.rsi = a2;
  r.rdx = a3;
  r.r10 = a4;
  r.r8 = a5;
  r.r9 = a6;
  OSMO_TRY(set_regs(r));
  std::string what = fmt::format("injected syscall {}", nr);
  if (gate_kind_ == GateKind::kInt3) {
    OSMO_TRY(resume_until(PTRACE_CONT, Want::kTrap, what.c_str()));
  } else {
    OSMO_TRY(resume_until(PTRACE_SYSCALL, Want::kSyscallStop, what.c_str()));  // entry
    OSMO_TRY(resume_until(PTRACE_SYSCALL, Want::kSyscallStop, what.c_str()));  // exit
  }
  OSMO_ASSIGN_OR_RETURN(user_regs_struct out, get_regs());
  if (gate_kind_ == GateKind::kInt3 && out.rip != gate_ + 3)
    return make_error("pid {} trapped at {:#x}, not after the gate at {:#x}, during {}", pid_, out.rip, gate_, what);
  return static_cast<long>(out.rax);
}

Result<long> Tracee::syscall_ok(const char* what, long nr, std::uint64_t a1, std::uint64_t a2,
                                std::uint64_t a3, std::uint64_t a4, std::uint64_t a5,
                                std::uint64_t a6) {
  OSMO_ASSIGN_OR_RETURN(long rv, syscall(nr, a1, a2, a3, a4, a5, a6));
  if (rv < 0 && rv > -4096)
    return Error{static_cast<int>(-rv), fmt::format("{} in pid {} failed", what, pid_)};
  return rv;
}

Result<std::vector<long>> Tracee::syscall_batch(const std::vector<SyscallReq>& reqs) {
  std::vector<long> results;
  if (reqs.empty()) return results;
  if (exec_code_ == 0 || exec_max_ == 0) return make_error("internal: no syscall executor in pid {}", pid_);
  std::vector<std::uint64_t> table;
  for (std::size_t first = 0; first < reqs.size(); first += exec_max_) {
    std::size_t n = std::min(exec_max_, reqs.size() - first);
    table.assign(n * 8, 0);
    for (std::size_t i = 0; i < n; i++) {
      const SyscallReq& q = reqs[first + i];
      table[i * 8] = static_cast<std::uint64_t>(q.nr);
      for (int k = 0; k < 6; k++) table[i * 8 + 1 + static_cast<std::size_t>(k)] = q.a[k];
      table[i * 8 + 7] = static_cast<std::uint64_t>(-4096);  // "not run"
    }
    OSMO_TRY(write_mem(exec_table_, table.data(), table.size() * 8));
    OSMO_ASSIGN_OR_RETURN(user_regs_struct r, get_regs());
    r.rip = exec_code_;
    r.orig_rax = static_cast<unsigned long long>(-1);
    r.r12 = exec_table_;
    r.r13 = n;
    OSMO_TRY(set_regs(r));
    OSMO_TRY(resume_until(PTRACE_CONT, Want::kTrap, "a syscall batch"));
    OSMO_TRY(read_mem(exec_table_, table.data(), table.size() * 8));
    for (std::size_t i = 0; i < n; i++) {
      auto rv = static_cast<long>(table[i * 8 + 7]);
      if (rv == -4096) return make_error("internal: syscall batch stopped before {} in pid {}", reqs[first + i].what, pid_);
      if (rv < 0 && rv > -4096)
        return Error{static_cast<int>(-rv), fmt::format("{} in pid {} failed", reqs[first + i].what, pid_)};
      results.push_back(rv);
    }
  }
  return results;
}

Status Tracee::start_batch(const std::vector<SyscallReq>& reqs) {
  if (exec_code_ == 0 || reqs.size() > exec_max_ || reqs.empty() || async_n_ > 0)
    return make_error("internal: cannot start an asynchronous batch of {} in pid {}", reqs.size(), pid_);
  std::vector<std::uint64_t> table(reqs.size() * 8, 0);
  for (std::size_t i = 0; i < reqs.size(); i++) {
    table[i * 8] = static_cast<std::uint64_t>(reqs[i].nr);
    for (int k = 0; k < 6; k++) table[i * 8 + 1 + static_cast<std::size_t>(k)] = reqs[i].a[k];
    table[i * 8 + 7] = static_cast<std::uint64_t>(-4096);
  }
  OSMO_TRY(write_mem(exec_table_, table.data(), table.size() * 8));
  OSMO_ASSIGN_OR_RETURN(user_regs_struct r, get_regs());
  r.rip = exec_code_;
  r.orig_rax = static_cast<unsigned long long>(-1);
  r.r12 = exec_table_;
  r.r13 = reqs.size();
  OSMO_TRY(set_regs(r));
  if (ptrace(PTRACE_CONT, pid_, nullptr, nullptr) != 0)
    return errno_error("cannot resume pid {} for a syscall batch", pid_);
  async_reqs_ = reqs;
  async_n_ = reqs.size();
  return ok_status();
}

Result<std::vector<long>> Tracee::finish_batch() {
  if (async_n_ == 0) return make_error("internal: no asynchronous batch in pid {}", pid_);
  std::size_t n = std::exchange(async_n_, 0);
  OSMO_TRY(wait_for(PTRACE_CONT, Want::kTrap, "an asynchronous syscall batch"));
  std::vector<std::uint64_t> table(n * 8);
  OSMO_TRY(read_mem(exec_table_, table.data(), table.size() * 8));
  std::vector<long> results;
  for (std::size_t i = 0; i < n; i++) {
    auto rv = static_cast<long>(table[i * 8 + 7]);
    if (rv < 0 && rv > -4096)
      return Error{static_cast<int>(-rv), fmt::format("{} in pid {} failed", async_reqs_[i].what, pid_)};
    if (rv == -4096) return make_error("internal: syscall batch stopped early in pid {}", pid_);
    results.push_back(rv);
  }
  return results;
}

Result<long> Tracee::syscall_no_trap(long nr, std::uint64_t a1, std::uint64_t a2, std::uint64_t a3,
                                     std::uint64_t a4) {
  GateKind saved = gate_kind_;
  gate_kind_ = GateKind::kSyscallStops;
  auto r = syscall(nr, a1, a2, a3, a4);
  gate_kind_ = saved;
  return r;
}

Status Tracee::write_mem(std::uint64_t addr, const void* p, std::size_t n) {
  iovec local{const_cast<void*>(p), n};
  iovec remote{reinterpret_cast<void*>(addr), n};
  ssize_t w = process_vm_writev(pid_, &local, 1, &remote, 1, 0);
  if (w < 0) return errno_error("cannot write {} bytes at {:#x} in pid {}", n, addr, pid_);
  if (static_cast<std::size_t>(w) != n)
    return make_error("short write of {}/{} bytes at {:#x} in pid {}", w, n, addr, pid_);
  return ok_status();
}
Status Tracee::read_mem(std::uint64_t addr, void* p, std::size_t n) {
  iovec local{p, n};
  iovec remote{reinterpret_cast<void*>(addr), n};
  ssize_t r = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  if (r < 0) return errno_error("cannot read {} bytes at {:#x} in pid {}", n, addr, pid_);
  if (static_cast<std::size_t>(r) != n)
    return make_error("short read of {}/{} bytes at {:#x} in pid {}", r, n, addr, pid_);
  return ok_status();
}

Status Tracee::detach() {
  if (pid_ < 0) return ok_status();
  pid_t p = std::exchange(pid_, -1);
  if (ptrace(PTRACE_DETACH, p, nullptr, nullptr) != 0)
    return errno_error("cannot detach from pid {}", p);
  // Signals taken off during injection go back now. With its siginfo when the kernel lets us
  // (a negative si_code from another process); others (kill, kernel) as a plain tgkill.
  Status first = ok_status();
  for (siginfo_t& si : std::exchange(deferred_, {})) {
    long rc = -1;
    if (si.si_code < 0 && si.si_code != SI_TKILL)
      rc = ::syscall(SYS_rt_tgsigqueueinfo, p, p, si.si_signo, &si);
    if (rc != 0) rc = ::syscall(SYS_tgkill, p, p, si.si_signo);
    if (rc != 0 && first.ok()) first = errno_error("cannot send signal {} back to pid {}", si.si_signo, p);
  }
  return first;
}

void Tracee::kill_now() {
  if (pid_ < 0) return;
  pid_t p = std::exchange(pid_, -1);
  ::kill(p, SIGKILL);
  // Reaping is the parent's business (our init for restored processes); just make sure the
  // tracee is gone from ptrace's point of view.
  int status = 0;
  while (::waitpid(p, &status, __WALL) < 0 && errno == EINTR) {
  }
}

}  // namespace osmo::ckpt
