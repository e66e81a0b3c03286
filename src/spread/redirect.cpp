// SPDX-License-Identifier: GPL-2.0-or-later
// The ptrace step of a redirect (see redirect.hpp for the timeline).
#include "spread/redirect.hpp"

#include <errno.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <cstring>

#include <fmt/format.h>

namespace osmo::spread {

namespace {

// The kernel's internal "restart this syscall" code, visible in rax while the interrupted
// execve sits in the ptrace stop.
constexpr long kErestartsys = 512;
// Skip the x86_64 red zone (128 bytes) and a little more below the stack pointer.
constexpr std::uint64_t kBelowSp = 512;

RedirectResult failed(RedirectOutcome o, std::string why) { return RedirectResult{o, std::move(why)}; }

}  // namespace

RedirectResult redirect_exec(pid_t tid, const std::vector<std::string>& new_argv,
                             const std::vector<std::uint64_t>& keep_argv, std::uint64_t cookie) {
#if defined(__x86_64__)
  if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0)
    return failed(RedirectOutcome::kNotTouched, fmt::format("cannot trace pid {}: {}", tid, std::strerror(errno)));
  // From here on the caller is ours until PTRACE_DETACH; every path out detaches.
  if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
    const int e = errno;
    ::ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
    return failed(RedirectOutcome::kNotTouched, fmt::format("PTRACE_INTERRUPT pid {}: {}", tid, std::strerror(e)));
  }
  int st = 0;
  for (;;) {
    const pid_t w = ::waitpid(tid, &st, __WALL);
    if (w == tid) break;
    if (w < 0 && errno == EINTR) continue;
    return failed(RedirectOutcome::kNotTouched, fmt::format("waitpid pid {}: {}", tid, std::strerror(errno)));
  }
  if (!WIFSTOPPED(st))  // it died meanwhile (a SIGKILL): nothing left to do
    return failed(RedirectOutcome::kNotTouched, fmt::format("pid {} ended before its exec", tid));
  auto detach = [tid](int sig) { ::ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig))); };
  if ((st >> 16) != PTRACE_EVENT_STOP) {
    // A signal arrived first (signal-delivery stop): let it be delivered; the exec restarts or
    // the caller's handler runs and calls exec again, either way a new notification.
    detach(WSTOPSIG(st));
    return failed(RedirectOutcome::kRestarted, fmt::format("pid {} got signal {} while asking to exec", tid, WSTOPSIG(st)));
  }
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0) {
    const int e = errno;
    detach(0);
    return failed(RedirectOutcome::kRestarted, fmt::format("PTRACE_GETREGS pid {}: {}", tid, std::strerror(e)));
  }
  if (regs.orig_rax != SYS_execve || static_cast<long>(regs.rax) != -kErestartsys) {
    detach(0);
    return failed(RedirectOutcome::kRestarted,
                  fmt::format("pid {} is not in an interrupted execve (syscall {}, rax {})", tid,
                              static_cast<long>(regs.orig_rax), static_cast<long>(regs.rax)));
  }
  // The scratch area: the strings, then the pointer array (8-aligned), below the stack pointer.
  std::string strings;
  std::vector<std::size_t> offsets;
  for (const auto& a : new_argv) {
    offsets.push_back(strings.size());
    strings.append(a);
    strings.push_back('\0');
  }
  while (strings.size() % 16 != 0) strings.push_back('\0');
  const std::size_t nptr = new_argv.size() + keep_argv.size() + 1;
  const std::uint64_t total = strings.size() + nptr * sizeof(std::uint64_t);
  const std::uint64_t base = (regs.rsp - kBelowSp - total) & ~std::uint64_t{15};
  std::vector<std::uint64_t> ptrs;
  ptrs.reserve(nptr);
  for (std::size_t off : offsets) ptrs.push_back(base + off);
  for (std::uint64_t p : keep_argv) ptrs.push_back(p);
  ptrs.push_back(0);
  iovec local[2] = {{strings.data(), strings.size()}, {ptrs.data(), ptrs.size() * sizeof(std::uint64_t)}};
  iovec remote{reinterpret_cast<void*>(base), total};
  const ssize_t w = ::process_vm_writev(tid, local, 2, &remote, 1, 0);
  if (w != static_cast<ssize_t>(total)) {
    const int e = errno;
    detach(0);
    return failed(RedirectOutcome::kRestarted,
                  fmt::format("pid {}: no room below its stack pointer for the deputy's arguments ({})", tid,
                              w < 0 ? std::strerror(e) : "short write"));
  }
  // rax stays -ERESTARTSYS: when the stop ends the kernel restores rax from orig_rax (execve) and
  // steps back over the syscall instruction, so the execve runs again with these arguments.
  regs.rdi = base + offsets[0];
  regs.rsi = base + strings.size();
  regs.r10 = cookie;
  if (::ptrace(PTRACE_SETREGS, tid, nullptr, &regs) != 0) {
    const int e = errno;
    detach(0);
    return failed(RedirectOutcome::kRestarted, fmt::format("PTRACE_SETREGS pid {}: {}", tid, std::strerror(e)));
  }
  detach(0);
  return RedirectResult{RedirectOutcome::kRedirected, {}};
#else
  (void)tid, (void)new_argv, (void)keep_argv, (void)cookie;
  return failed(RedirectOutcome::kNotTouched, "redirecting an exec needs x86_64");
#endif
}

}  // namespace osmo::spread
