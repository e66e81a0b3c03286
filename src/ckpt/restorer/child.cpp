// SPDX-License-Identifier: GPL-2.0-or-later
// The new process prepares itself and parks (child.hpp).
#include "ckpt/restorer/child.hpp"

#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "ckpt/restorer/messages.hpp"

namespace osmo::ckpt::restorer {

std::string encode_report(const ParkedReport& r) {
  std::vector<std::uint64_t> words{static_cast<std::uint64_t>(r.pid), r.tramp,
                                   static_cast<std::uint64_t>(r.helper_fd_base)};
  for (int f : r.files) words.push_back(static_cast<std::uint64_t>(f));
  return std::string(reinterpret_cast<const char*>(words.data()), words.size() * 8);
}

Result<std::int32_t> report_pid(const std::string& body) {
  if (body.size() < 8) return make_error("internal: the new process reported {} bytes", body.size());
  std::uint64_t w = 0;
  std::memcpy(&w, body.data(), 8);
  return static_cast<std::int32_t>(w);
}

Result<ParkedReport> decode_report(const std::string& body, std::size_t nfiles) {
  if (body.size() != (3 + nfiles) * 8)
    return make_error("internal: the new process reported {} bytes, expected {}", body.size(), (3 + nfiles) * 8);
  std::vector<std::uint64_t> words(body.size() / 8);
  std::memcpy(words.data(), body.data(), body.size());
  ParkedReport r;
  r.pid = static_cast<std::int32_t>(words[0]);
  r.tramp = words[1];
  r.helper_fd_base = static_cast<int>(words[2]);
  for (std::size_t i = 0; i < nfiles; i++) r.files.push_back(static_cast<int>(words[3 + i]));
  return r;
}

void child_main(int sock, ChildPlan& plan) {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);
  if (plan.session.target_setsid && ::setsid() < 0)
    die_with(sock, errno_error("cannot make pid {} a session leader (setsid)", plan.img->task.pid));
  if (plan.session.target_setpgid && ::setpgid(0, 0) != 0)
    die_with(sock, errno_error("cannot make pid {} a process group leader (setpgid)", plan.img->task.pid));
  // Its controlling terminal before its children exist, so that they inherit it (terminal.cpp).
  if (plan.ctty_fd >= 0 && ::ioctl(plan.ctty_fd, TIOCSCTTY, 0) != 0)
    die_with(sock, errno_error("cannot give pid {} its terminal again (TIOCSCTTY)", plan.img->task.pid));
  // Its children first, while it still holds every fd the caller opened for the whole tree
  // (each child keeps its own share of them).
  if (plan.tree != nullptr)
    if (auto s = spawn_children(sock, *plan.tree, plan.node); !s.ok()) die_with(sock, s.error());
  if (plan.netns_fd >= 0 && ::setns(plan.netns_fd, CLONE_NEWNET) != 0)
    die_with(sock, errno_error("cannot join network namespace"));
  std::vector<int*> keep{&sock};
  for (int& f : plan.files) keep.push_back(&f);
  auto base = fds_child_install(plan.fds, keep);
  if (!base.ok()) die_with(sock, base.error());
  if (auto s = task_child_prepare(*plan.img); !s.ok()) die_with(sock, s.error());
  if (auto s = sig_child_prepare(*plan.img); !s.ok()) die_with(sock, s.error());
  std::uint64_t tramp = 0;
  for (std::uint64_t cand : plan.tramp_candidates) {
    void* m = ::mmap(reinterpret_cast<void*>(cand), kTrampSize, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == reinterpret_cast<void*>(cand)) {
      tramp = cand;
      break;
    }
    if (m != MAP_FAILED) ::munmap(m, kTrampSize);
  }
  if (tramp == 0) die_with(sock, make_error("no free address for the restore trampoline"));
  std::memcpy(reinterpret_cast<void*>(tramp), injected_code().data(), injected_code().size());
  ParkedReport report{plan.img->task.pid, tramp, *base, plan.files};
  std::string body = encode_report(report);
  if (!send_msg(sock, MsgTag::kReady, body.data(), body.size()).ok()) ::_exit(127);
  for (;;) ::syscall(SYS_pause);  // all signals blocked: only our PTRACE_INTERRUPT gets us out
}

}  // namespace osmo::ckpt::restorer
