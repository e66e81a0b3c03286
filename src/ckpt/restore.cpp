// SPDX-License-Identifier: GPL-2.0-or-later
// restore(): sequences the kinds to build a new process from an image stream.
//
//   caller (this process)              init (PID 1, new pid+mount ns)       new process
//   read metadata, blobs; open files,
//   resolve stand-ins (all refusals
//   happen here, before any process)
//   clone3(NEWPID|NEWNS) ----------->  private mounts, fresh /proc,
//                                      unshare(NEWTIME) + offsets,
//                                      [session/group placeholders with
//                                      the leaders' pids, session.cpp]
//                                      clone3(set_tid = image pid) ---->  setsid/setpgid if it led
//                                                                        them, setns(net), fds to
//                                      send pidfd                        their numbers, cwd, umask,
//                                                                        personality, comm,
//                                                                        dispositions, altstack,
//                                                                        trampoline; report; park
//   seize + stop the new process; by injected syscalls: unregister rseq, unmap its own memory,
//   move the vdso, map the image, populate, write pages, mprotect, PR_SET_MM_MAP, rseq/robust
//   list/tid address, pending signals, rlimits, close helper fds, credentials and
//   capabilities, itimers (every signal still blocked); SIGTRAP's disposition and munmap of the
//   trampoline through syscall stops (no int3 after them); mask, xstate, registers; detach.
//   send "go" ---------------------->  stop dying with the caller; reap; exit with the child's
//                                      status (128+N for signal N), forwarding signals to it.
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>

#include "base/scope_guard.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/faults.hpp"
#include "ckpt/kinds.hpp"
#include "ckpt/phase_log.hpp"

namespace osmo::ckpt {
namespace {

constexpr int kMsgTimeoutMs = 20000;

// ---- tagged messages over the SOCK_SEQPACKET pair ----
Status send_msg(int sock, char tag, const void* data, std::size_t n, int pass_fd = -1) {
  std::vector<char> buf(1 + n);
  buf[0] = tag;
  if (n > 0) std::memcpy(buf.data() + 1, data, n);
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  if (pass_fd >= 0) {
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
  }
  if (::sendmsg(sock, &mh, MSG_NOSIGNAL) < 0) return errno_error("cannot send message '{}'", tag);
  return ok_status();
}

struct Msg {
  char tag = 0;
  std::string body;
  UniqueFd fd;
};

Result<Msg> recv_msg(int sock, const char* waiting_for) {
  pollfd p{sock, POLLIN, 0};
  int pr;
  do pr = ::poll(&p, 1, kMsgTimeoutMs);
  while (pr < 0 && errno == EINTR);
  if (pr == 0) return make_error("timed out waiting for {}", waiting_for);
  std::vector<char> buf(8192);
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  ssize_t n;
  do n = ::recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno_error("cannot receive {}", waiting_for);
  if (n == 0) return make_error("the restore helper exited before sending {}", waiting_for);
  Msg m;
  m.tag = buf[0];
  m.body.assign(buf.data() + 1, static_cast<std::size_t>(n - 1));
  for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm != nullptr; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
      m.fd.reset(fd);
    }
  return m;
}

[[noreturn]] void die_with(int sock, const Error& e) {
  std::string s = e.str();
  (void)send_msg(sock, 'E', s.data(), s.size());
  ::_exit(127);
}

long raw_clone3(clone_args* a) { return ::syscall(SYS_clone3, a, sizeof(*a)); }

// What the new process needs to prepare itself (all of it computed by the caller).
struct ChildPlan {
  const ProcessImage* img = nullptr;
  SessionPlan session;
  std::vector<FdPlanEntry> fds;
  std::vector<int> files;   // fds of the caller the new process keeps (mapped files, exe)
  int netns_fd = -1;
  std::vector<std::uint64_t> tramp_candidates;
};

// Runs in the new process: never returns.
[[noreturn]] void child_main(int sock, ChildPlan& plan) {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);
  if (plan.session.target_setsid && ::setsid() < 0)
    die_with(sock, errno_error("cannot make pid {} a session leader (setsid)", plan.img->task.pid));
  if (plan.session.target_setpgid && ::setpgid(0, 0) != 0)
    die_with(sock, errno_error("cannot make pid {} a process group leader (setpgid)", plan.img->task.pid));
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
  std::vector<std::uint64_t> reply{tramp, static_cast<std::uint64_t>(*base)};
  for (int f : plan.files) reply.push_back(static_cast<std::uint64_t>(f));
  if (!send_msg(sock, 'R', reply.data(), reply.size() * 8).ok()) ::_exit(127);
  for (;;) ::syscall(SYS_pause);  // all signals blocked: only our PTRACE_INTERRUPT gets us out
}

std::string offsets_text(std::int64_t mono, std::int64_t boot) {
  auto split = [](std::int64_t v) {
    std::int64_t s = v / 1'000'000'000, ns = v % 1'000'000'000;
    if (ns < 0) {
      ns += 1'000'000'000;
      s -= 1;
    }
    return fmt::format("{} {}", s, ns);
  };
  return fmt::format("monotonic {}\nboottime {}\n", split(mono), split(boot));
}

// One process of the chain init builds (session.cpp): placeholders, then the restored process.
struct ChainStep {
  pid_t tid = 0;
  enum class Role { kSession, kGroup, kTarget } role = Role::kTarget;
};

std::vector<ChainStep> chain_of(const ChildPlan& plan) {
  std::vector<ChainStep> steps;
  if (plan.session.session_placeholder > 0)
    steps.push_back({plan.session.session_placeholder, ChainStep::Role::kSession});
  if (plan.session.group_placeholder > 0)
    steps.push_back({plan.session.group_placeholder, ChainStep::Role::kGroup});
  steps.push_back({plan.img->task.pid, ChainStep::Role::kTarget});
  return steps;
}

[[noreturn]] void chain_main(int sock, ChildPlan& plan, const std::vector<ChainStep>& steps, std::size_t i);

// Creates steps[i] with its pid (set_tid). From init it is init's child; from a placeholder it
// is created with CLONE_PARENT, so it is init's child too (clone3 then wants exit_signal 0: the
// child inherits the placeholder's SIGCHLD). The restored process's pidfd goes to the caller.
// Returns in the creator only; the created process never returns.
Status chain_spawn(int sock, ChildPlan& plan, const std::vector<ChainStep>& steps, std::size_t i, bool from_init) {
  const ChainStep& st = steps[i];
  bool target = st.role == ChainStep::Role::kTarget;
  pid_t want = st.tid;
  int pidfd = -1;
  clone_args a{};
  a.flags = (target ? CLONE_PIDFD : 0) | (from_init ? 0 : CLONE_PARENT);
  a.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  a.exit_signal = from_init ? SIGCHLD : 0;
  a.set_tid = reinterpret_cast<std::uint64_t>(&want);
  a.set_tid_size = 1;
  long child = raw_clone3(&a);
  if (child < 0)
    return errno_error("cannot create pid {} ({}, clone3 with set_tid)", want,
                       target ? "the restored process" : st.role == ChainStep::Role::kSession
                                                             ? "session placeholder"
                                                             : "process group placeholder");
  if (child == 0) chain_main(sock, plan, steps, i);
  if (target) {
    Status s = send_msg(sock, 'P', nullptr, 0, pidfd);
    ::close(pidfd);
    return s;
  }
  return ok_status();
}

// A placeholder recreates its session or group, creates the next step inside it, and exits;
// the restored process prepares itself (child_main).
[[noreturn]] void chain_main(int sock, ChildPlan& plan, const std::vector<ChainStep>& steps, std::size_t i) {
  const ChainStep& st = steps[i];
  if (st.role == ChainStep::Role::kTarget) child_main(sock, plan);
  if (st.role == ChainStep::Role::kSession && ::setsid() < 0)
    die_with(sock, errno_error("session placeholder pid {}: setsid failed", st.tid));
  if (st.role == ChainStep::Role::kGroup && ::setpgid(0, 0) != 0)
    die_with(sock, errno_error("process group placeholder pid {}: setpgid failed", st.tid));
  ::prctl(PR_SET_NAME, st.role == ChainStep::Role::kSession ? "osmo-session" : "osmo-pgrp", 0, 0, 0);
  if (auto s = chain_spawn(sock, plan, steps, i + 1, false); !s.ok()) die_with(sock, s.error());
  ::_exit(0);
}

volatile sig_atomic_t g_init_child = 0;
void init_forward(int sig) {
  if (g_init_child > 0) ::kill(g_init_child, sig);
}

// Runs in init (PID 1 of the new namespaces): never returns.
[[noreturn]] void init_main(int sock, ChildPlan& plan, const std::string& timens_offsets) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    die_with(sock, errno_error("cannot make mounts private"));
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    die_with(sock, errno_error("cannot mount a fresh /proc"));
  if (!timens_offsets.empty()) {
    if (::unshare(CLONE_NEWTIME) != 0) die_with(sock, errno_error("cannot create a time namespace"));
    UniqueFd f(::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC));
    if (!f || ::write(f.get(), timens_offsets.data(), timens_offsets.size()) !=
                  static_cast<ssize_t>(timens_offsets.size()))
      die_with(sock, errno_error("cannot set time namespace offsets '{}'", timens_offsets));
  }
  // Session and group (session.cpp), then the restored process; placeholders are reaped at
  // once, so none is ever seen as a zombie once the restore reports success.
  if (plan.session.init_setsid && ::setsid() < 0)
    die_with(sock, errno_error("init cannot become the leader of session 1 (setsid)"));
  const pid_t child = plan.img->task.pid;
  std::vector<ChainStep> steps = chain_of(plan);
  if (auto s = chain_spawn(sock, plan, steps, 0, true); !s.ok()) die_with(sock, s.error());
  for (const ChainStep& st : steps) {
    if (st.role == ChainStep::Role::kTarget) continue;
    int ws = 0;
    while (::waitpid(st.tid, &ws, 0) < 0 && errno == EINTR) {
    }
  }
  g_init_child = child;
  struct sigaction sa {};
  sa.sa_handler = init_forward;
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT})
    ::sigaction(s, &sa, nullptr);
  // Wait for the caller's verdict: 'G' = the process runs, anything else = give up.
  char tag = 0;
  ssize_t n;
  do n = ::read(sock, &tag, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1 || tag != 'G') {
    ::kill(child, SIGKILL);
    ::_exit(127);
  }
  ::prctl(PR_SET_PDEATHSIG, 0);
  ::close(sock);
  ::syscall(SYS_close_range, 0u, ~0u, 0u);
  for (;;) {
    int st = 0;
    pid_t w = ::waitpid(-1, &st, 0);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) ::_exit(127);
    if (w == child) {
      if (WIFEXITED(st)) ::_exit(WEXITSTATUS(st));
      if (WIFSIGNALED(st)) ::_exit(128 + WTERMSIG(st));
    }
  }
}

Result<pid_t> pid_of_pidfd(int pidfd) {
  OSMO_ASSIGN_OR_RETURN(std::string info, read_text_file(fmt::format("/proc/self/fdinfo/{}", pidfd)));
  auto p = info.find("Pid:");
  if (p == std::string::npos) return make_error("no Pid in pidfd fdinfo");
  return static_cast<pid_t>(std::stol(info.substr(p + 4)));
}

std::vector<std::uint64_t> tramp_candidates(const ProcessImage& img) {
  std::vector<std::uint64_t> out;
  std::uint64_t prev = 1ull << 20;
  auto consider = [&](std::uint64_t gap_start, std::uint64_t gap_end) {
    if (gap_end > gap_start && gap_end - gap_start >= kTrampSize + 2 * kPageSize && out.size() < 64)
      out.push_back(gap_start + kPageSize);
  };
  for (const VmaImage& v : img.mem.vmas) {
    consider(prev, v.start);
    prev = std::max(prev, v.end);
  }
  consider(prev, 0x7ff000000000ull);
  return out;
}

std::int64_t clock_ns(clockid_t c) {
  timespec ts{};
  ::clock_gettime(c, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Result<RestoredProcess> do_restore(int in_fd, const RestoreOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  ImageReader r(in_fd);
  OSMO_TRY(r.read_header());
  ProcessImage img;
  std::vector<bool> seen(kinds().size(), false);
  std::vector<std::uint8_t> payload;
  SectionHeader h;
  for (;;) {
    OSMO_ASSIGN_OR_RETURN(h, r.next());
    std::size_t k = 0;
    while (k < kinds().size() && kinds()[k].section != h.type) k++;
    if (k == kinds().size()) break;
    if (seen[k]) return make_error("image corrupted: two {} sections", kinds()[k].name);
    seen[k] = true;
    OSMO_TRY(r.read_payload(&payload));
    Decoder d(payload.data(), payload.size(), kinds()[k].name);
    OSMO_TRY(kinds()[k].decode(d, img));
  }
  for (std::size_t k = 0; k < kinds().size(); k++)
    if (!seen[k]) return make_error("image corrupted: no {} section", kinds()[k].name);
  if (img.task.pid == 1) return make_error("the image is of a PID 1, which osmo cannot restore");

  // Everything that can refuse happens before a process exists.
  OSMO_TRY(regs_check_cpu(img));
  OSMO_TRY(task_check_restorable(img));
  std::vector<UniqueFd> blob_fds;
  OSMO_ASSIGN_OR_RETURN(h, mem_read_blobs(r, h, img, &blob_fds));
  InheritStdioResolver default_resolver;
  FdResolver& resolver = opts.resolver != nullptr ? *opts.resolver : default_resolver;
  std::vector<UniqueFd> owned;
  ChildPlan plan;
  plan.img = &img;
  OSMO_ASSIGN_OR_RETURN(plan.session, plan_session(img.task.pid, img.task.sid, img.task.pgid));
  OSMO_ASSIGN_OR_RETURN(plan.fds, fds_plan(img, resolver, opts.verify_inode, blob_fds, &owned));
  std::vector<UniqueFd> files;
  std::vector<int> vma_file_idx;
  int exe_idx = -1;
  OSMO_TRY(mem_open_files(img, blob_fds, opts.verify_inode, &files, &vma_file_idx, &exe_idx));
  for (auto& f : files) plan.files.push_back(f.get());
  UniqueFd netns;
  if (!opts.netns_path.empty()) {
    netns.reset(::open(opts.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns) return errno_error("cannot open network namespace {}", opts.netns_path);
    plan.netns_fd = netns.get();
  }
  plan.tramp_candidates = tramp_candidates(img);
  std::string offsets;
  if (opts.hide_clock_jump) {
    std::int64_t own_mono = 0, own_boot = 0;
    if (auto t = read_text_file("/proc/self/timens_offsets"); t.ok()) {
      std::istringstream in(*t);
      std::string name;
      long long s, ns;
      while (in >> name >> s >> ns) {
        if (name == "monotonic") own_mono = s * 1'000'000'000LL + ns;
        if (name == "boottime") own_boot = s * 1'000'000'000LL + ns;
      }
    }
    offsets = offsets_text(img.task.monotonic_ns - (clock_ns(CLOCK_MONOTONIC) - own_mono),
                           img.task.boottime_ns - (clock_ns(CLOCK_BOOTTIME) - own_boot));
  }

  // Create init and, through it, the new process.
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return errno_error("cannot create the restore socket pair");
  UniqueFd sock(sv[0]);
  clone_args a{};
  a.flags = CLONE_NEWPID | CLONE_NEWNS;
  a.exit_signal = SIGCHLD;
  long init = raw_clone3(&a);
  if (init < 0) {
    ::close(sv[1]);
    return errno_error("cannot create the pid namespace for the restored process (clone3)");
  }
  if (init == 0) {
    ::close(sv[0]);
    init_main(sv[1], plan, offsets);
  }
  ::close(sv[1]);
  auto init_pid = static_cast<pid_t>(init);
  ScopeGuard kill_init([&] {
    ::kill(init_pid, SIGKILL);
    int st;
    while (::waitpid(init_pid, &st, 0) < 0 && errno == EINTR) {
    }
  });

  UniqueFd pidfd;
  std::vector<std::uint64_t> reply;
  while (!pidfd || reply.empty()) {
    OSMO_ASSIGN_OR_RETURN(Msg m, recv_msg(sock.get(), "the new process"));
    if (m.tag == 'E') return make_error("{}", m.body);
    if (m.tag == 'P') pidfd = std::move(m.fd);
    if (m.tag == 'R') {
      reply.resize(m.body.size() / 8);
      std::memcpy(reply.data(), m.body.data(), reply.size() * 8);
      if (reply.size() != 2 + plan.files.size()) return make_error("internal: bad reply from the new process");
    }
  }
  OSMO_ASSIGN_OR_RETURN(pid_t cpid, pid_of_pidfd(pidfd.get()));
  OSMO_ASSIGN_OR_RETURN(Tracee tracee, Tracee::seize_and_stop(cpid, Tracee::OnRelease::kKill, true, nullptr));
  OSMO_TRY(fault("restore.after_clone"));

  RestoreContext rc;
  rc.tracee = &tracee;
  rc.pid = cpid;
  rc.img = &img;
  rc.use_uffd = opts.fill_with_userfaultfd;
  rc.tramp = reply[0];
  rc.tramp_size = kTrampSize;
  rc.data = rc.tramp + kTrampDataOffset;
  rc.helper_fd_base = static_cast<int>(reply[1]);
  rc.vma_fds.assign(img.mem.vmas.size(), -1);
  for (std::size_t i = 0; i < vma_file_idx.size(); i++)
    if (vma_file_idx[i] >= 0) rc.vma_fds[i] = static_cast<int>(reply[2 + static_cast<std::size_t>(vma_file_idx[i])]);
  rc.exe_fd = exe_idx >= 0 ? static_cast<int>(reply[2 + static_cast<std::size_t>(exe_idx)]) : -1;
  tracee.set_gate(rc.tramp, GateKind::kInt3);
  tracee.set_executor(rc.tramp + kExecutorOffset, rc.tramp + kTrampTableOffset, kTrampTableEntries);
  OSMO_TRY(tracee.set_sigmask(~0ull));

  OSMO_ASSIGN_OR_RETURN(auto xs, tracee.get_xstate());
  if (xs.size() != img.regs.xstate.size())
    return make_error("this CPU's xstate is {} bytes, the image's {} (different xsave features)", xs.size(),
                      img.regs.xstate.size());
  // glibc registered rseq for the new process (inherited from us): it points into memory we are
  // about to unmap, so it goes first.
  OSMO_ASSIGN_OR_RETURN(RseqConfig rsc, get_rseq_config(cpid));
  if (rsc.rseq_abi_pointer != 0)
    OSMO_TRY(tracee.syscall_ok("rseq (unregister)", SYS_rseq, rsc.rseq_abi_pointer, rsc.rseq_abi_size, 1,
                               rsc.signature));

  engine_log().debug("restore pid={} metadata+process ms={:.2f}", cpid, ms_since(t0));
  auto tp = std::chrono::steady_clock::now();
  OSMO_TRY(mem_restore_layout(rc));
  OSMO_ASSIGN_OR_RETURN(h, mem_restore_pages(rc, r, h));
  engine_log().debug("restore pid={} layout+pages ms={:.2f}", cpid, ms_since(tp));
  tp = std::chrono::steady_clock::now();
  if (tracee.batch_running()) OSMO_TRY(tracee.finish_batch());
  if (h.type != SectionType::kEnd)
    return make_error("image corrupted: unexpected {} section after the pages", section_name(h.type));
  OSMO_TRY(r.read_payload(&payload));  // verifies the END totals
  OSMO_TRY(mem_restore_protect(rc));
  OSMO_TRY(mm_restore(rc));
  OSMO_TRY(thread_restore(rc));
  OSMO_TRY(sig_restore_pending(rc));
  OSMO_TRY(task_restore_limits(rc));
  OSMO_TRY(tracee.syscall_ok("close_range (helper fds)", SYS_close_range,
                             static_cast<std::uint64_t>(rc.helper_fd_base), ~0u, 0));
  OSMO_TRY(task_restore_creds(rc));
  // Timers last: they start running only now, and one that expires before the process runs
  // just leaves its signal pending (every signal is still blocked), as it would have in the
  // original. No injected call after this one can be disturbed by a timer signal.
  OSMO_TRY(timers_restore(rc));
  OSMO_TRY(fault("restore.regs"));
  OSMO_TRY(fault("restore.before_detach"));
  OSMO_TRY(sig_restore_sigtrap(rc));  // after the last int3 (ptrace.hpp)
  OSMO_TRY(tracee.syscall_final(SYS_munmap, rc.tramp, rc.tramp_size));
  OSMO_TRY(tracee.set_sigmask(img.sig.blocked));
  OSMO_TRY(tracee.set_xstate(img.regs.xstate));
  OSMO_TRY(tracee.set_regs(with_syscall_restart(img.regs.gp)));
  OSMO_TRY(tracee.detach());
  OSMO_TRY(send_msg(sock.get(), 'G', nullptr, 0));
  kill_init.dismiss();
  engine_log().debug("restore pid={} rest ms={:.2f}", cpid, ms_since(tp));

  RestoredProcess out;
  out.pid = cpid;
  out.init_pid = init_pid;
  out.pidfd = pidfd.release();
  out.image_pid = img.task.pid;
  out.pages_written = rc.pages_written;
  out.total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace

Result<RestoredProcess> restore(int in_fd, const RestoreOptions& opts) {
  auto r = do_restore(in_fd, opts);
  if (!r.ok()) {
    Error e = r.take_error();
    return Error{e.code, fmt::format("cannot restore: {}", e.message)};
  }
  return r;
}

}  // namespace osmo::ckpt
