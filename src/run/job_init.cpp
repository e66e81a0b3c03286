// SPDX-License-Identifier: GPL-2.0-or-later
// osmo init and the job's own setup between fork and exec (see job_init.hpp).
#include "run/job_init.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "base/fd_io.hpp"
#include "platform/linux/user_ns.hpp"
#include "run/fd_util.hpp"
#include "run/frame.hpp"
#include "spread/exec_filter.hpp"

extern char** environ;

namespace osmo::run {

const char* to_string(JobSetupStage stage) {
  switch (stage) {
    case JobSetupStage::kMountNs: return "create the job's mount namespace";
    case JobSetupStage::kProcMount: return "mount the job's /proc";
    case JobSetupStage::kFork: return "fork the job";
    case JobSetupStage::kRlimit: return "set the caller's resource limits";
    case JobSetupStage::kGroups: return "set the caller's supplementary groups";
    case JobSetupStage::kGid: return "set the caller's gid";
    case JobSetupStage::kUid: return "set the caller's uid";
    case JobSetupStage::kChdir: return "enter the working directory";
    case JobSetupStage::kSignals: return "reset signal handling";
    case JobSetupStage::kStdio: return "set up stdin/stdout/stderr";
    case JobSetupStage::kSpec: return "receive the job spec";
    case JobSetupStage::kTty: return "make the job's pty its controlling terminal";
    case JobSetupStage::kUserNs: return "map the daemon's user into the job's user namespace (running without root)";
  }
  return "set up the job";
}

namespace {

void report(int fd, InitReportKind kind, std::int32_t a = 0, std::int32_t b = 0, std::int32_t c = 0) {
  InitReport r{kind, a, b, c};
  // A short or failed write means the shepherd is gone; init then dies with it anyway.
  (void)!::write(fd, &r, sizeof r);
}

[[noreturn]] void setup_failed(const InitFds& fds, JobSetupStage stage, int err) {
  report(fds.report, InitReportKind::kSetupFailed, static_cast<int>(stage), err);
  ::_exit(1);
}

struct StageError {
  JobSetupStage stage;
  int err;
};

// A launch block checked and laid out for use: pointers into init's buffer.
struct Launch {
  const LaunchBlockHeader* h = nullptr;
  const std::uint32_t* groups = nullptr;
  const LaunchRlimit* rlimits = nullptr;
  const char* cwd = nullptr;
  const char* exec_path = nullptr;  // kLaunchExecPath, else nullptr
  char** argv = nullptr;
  char** envp = nullptr;
};

// Where init receives the launch block: mapped and faulted in before init says it is ready, large
// enough for the usual spec (the environment dominates) plus its argv/envp pointer arrays.
// A larger block gets a fresh mapping of its own.
constexpr std::size_t kLaunchBufferBytes = 256 * 1024;

// What the job's child needs; it runs on its own stack but in init's memory (CLONE_VM).
struct JobChild {
  const Launch* launch;
  const InitFds* fds;
  int err_fd;
};

// Between clone and exec in the job: everything that makes it look like the caller's process.
// On failure, writes (stage, errno) to `err_fd` and exits; on success the exec closes `err_fd`
// (O_CLOEXEC), which tells init that the job runs.
//
// The job is cloned with CLONE_VM | CLONE_VFORK (as posix_spawn does): no page tables are copied
// and no page is write-faulted twice, which matters on this VM (a fault costs ~12 us). init is
// suspended until the exec, and everything here touches only the child's own kernel state (signal
// dispositions, fds, limits, credentials, umask, cwd) or its stack, with two exceptions that are
// harmless to init: errno, and `environ`, which execvp needs to search the job's own PATH.
// Credentials are set with raw syscalls: they apply to the calling task only, which is what a
// child about to exec needs, and they bypass glibc's all-threads broadcast (setxid), whose
// bookkeeping lives in init's memory.
int become_job(void* arg) {
  const JobChild& c = *static_cast<const JobChild*>(arg);
  const Launch& l = *c.launch;
  const int err_fd = c.err_fd;
  auto fail = [err_fd](JobSetupStage stage) {
    StageError e{stage, errno};
    (void)!::write(err_fd, &e, sizeof e);
    ::_exit(127);
  };
  sigset_t none;
  sigemptyset(&none);
  if (::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, _NSIG / 8) != 0)
    fail(JobSetupStage::kSignals);
  // The shepherd ignores SIGPIPE; the job must not inherit that (`osmo run yes | head` relies on it).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
  int pty = -1;
  if (l.h->tty_streams != 0) {
    // A session of its own with the pty as its controlling terminal (as login and sshd do), so
    // that the terminal's line discipline and job control work inside the job (Ctrl-C, Ctrl-Z,
    // a shell's fg/bg). Opened by number, as root still: the shepherd made it the user's.
    if (::setsid() < 0) fail(JobSetupStage::kTty);
    char path[32] = "/dev/pts/";
    char digits[12];
    int nd = 0;
    for (std::uint32_t v = l.h->tty_index; nd == 0 || v != 0; v /= 10) digits[nd++] = static_cast<char>('0' + v % 10);
    std::size_t at = 9;
    while (nd > 0) path[at++] = digits[--nd];
    path[at] = '\0';
    pty = ::open(path, O_RDWR);  // no O_NOCTTY: a session leader without one acquires it
    if (pty < 0 || ::ioctl(pty, TIOCSCTTY, 0) != 0) fail(JobSetupStage::kTty);
    if (pty < 3) pty = ::fcntl(pty, F_DUPFD, 3);  // out of the way of the dup2s below
  } else {
    // Its own process group, so that a terminal-style signal reaches its children too.
    ::setpgid(0, 0);
  }
  const int std_src[3] = {(l.h->tty_streams & kTtyStdin) != 0 ? pty : c.fds->job_stdin,
                          (l.h->tty_streams & kTtyStdout) != 0 ? pty : c.fds->job_stdout,
                          (l.h->tty_streams & kTtyStderr) != 0 ? pty : c.fds->job_stderr};
  for (int i = 0; i < 3; ++i)
    if (::dup2(std_src[i], i) < 0) fail(JobSetupStage::kStdio);
  close_fds_except({0, 1, 2, err_fd});
  // Limits first, while still root: raising a hard limit needs CAP_SYS_RESOURCE.
  for (std::uint32_t i = 0; i < l.h->nrlimits; ++i) {
    rlimit r{l.rlimits[i].cur, l.rlimits[i].max};
    if (::setrlimit(static_cast<__rlimit_resource>(l.rlimits[i].resource), &r) != 0)
      fail(JobSetupStage::kRlimit);
  }
  // In a user namespace of our own (no root) setgroups is denied, and the job keeps the daemon's
  // user and groups, which are the caller's (launch_job refuses any other user).
  if (c.fds->map_uid < 0 && ::syscall(SYS_setgroups, static_cast<std::size_t>(l.h->ngroups), l.groups) != 0)
    fail(JobSetupStage::kGroups);
  if (::syscall(SYS_setresgid, l.h->gid, l.h->gid, l.h->gid) != 0) fail(JobSetupStage::kGid);
  if (::syscall(SYS_setresuid, l.h->uid, l.h->uid, l.h->uid) != 0) fail(JobSetupStage::kUid);
  ::umask(static_cast<mode_t>(l.h->umask));
  // As the caller, so that a directory the caller may not enter is refused like at home.
  if (::chdir(l.cwd) != 0) fail(JobSetupStage::kChdir);
  environ = l.envp;
  const char* file = l.exec_path != nullptr ? l.exec_path : l.argv[0];
  // A spreading job's own program passes the exec filter without asking (osmo run placed it).
  if ((l.h->flags & kLaunchSpread) != 0)
    spread::execvp_bypass(file, l.argv, l.envp, l.h->spread_cookie);
  else
    ::execvp(file, l.argv);
  const int exec_errno = errno;
  StageError e{JobSetupStage{0}, exec_errno};
  (void)!::write(err_fd, &e, sizeof e);
  ::_exit(exec_errno == ENOENT ? 127 : 126);
}

// Maps a stack of `stack_bytes` for the job's clone with `extra_bytes` above its top (the launch
// buffer), faulted in now, and an inaccessible guard below it, large enough that even a big
// stack frame (a VLA) that overruns it faults instead of writing into init's memory, which the
// clone shares. Returns the stack's top (where `extra_bytes` start), or nullptr (errno set).
char* map_child_stack(std::size_t stack_bytes, std::size_t extra_bytes) {
  constexpr std::size_t kGuardBytes = 1 << 20;
  const std::size_t used = stack_bytes + extra_bytes;
  char* base = static_cast<char*>(::mmap(nullptr, kGuardBytes + used, PROT_NONE,
                                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (base == MAP_FAILED) return nullptr;
  char* const stack = base + kGuardBytes;
  if (::mprotect(stack, used, PROT_READ | PROT_WRITE) != 0) return nullptr;
  (void)::madvise(stack, used, MADV_POPULATE_WRITE);  // best effort: faults now, not on the path
  return stack + stack_bytes;
}

// Receives the launch block into `buf` (or a larger mapping if it does not fit) and lays it out.
// False if the shepherd is gone or the block is malformed.
bool receive_launch(int fd, char* buf, std::size_t cap, Launch* out) {
  LaunchBlockHeader h;
  if (read_full(fd, &h, sizeof h).bytes != sizeof h) return false;  // EOF or error: the shepherd is gone
  if (h.magic != kLaunchBlockMagic || h.bytes < sizeof h || h.bytes > kMaxLaunchBlockBytes ||
      h.argc == 0 || h.argc > h.bytes || h.envc > h.bytes || h.ngroups > 65536 ||
      h.nrlimits > RLIM_NLIMITS)
    return false;
  const std::size_t pointers = (std::size_t{h.argc} + h.envc + 2) * sizeof(char*);
  const std::size_t need = h.bytes + alignof(char*) + pointers;
  if (need > cap) {
    void* big = ::mmap(nullptr, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (big == MAP_FAILED) return false;
    buf = static_cast<char*>(big);  // lives until init exits
  }
  std::memcpy(buf, &h, sizeof h);
  if (read_full(fd, buf + sizeof h, h.bytes - sizeof h).bytes != h.bytes - sizeof h) return false;
  out->h = reinterpret_cast<const LaunchBlockHeader*>(buf);
  std::size_t off = sizeof h;
  const std::size_t fixed = std::size_t{h.ngroups} * sizeof(std::uint32_t) + std::size_t{h.nrlimits} * sizeof(LaunchRlimit);
  if (fixed > h.bytes - off) return false;
  out->rlimits = reinterpret_cast<const LaunchRlimit*>(buf + off);  // 8-aligned: after the header
  off += std::size_t{h.nrlimits} * sizeof(LaunchRlimit);
  out->groups = reinterpret_cast<const std::uint32_t*>(buf + off);
  off += std::size_t{h.ngroups} * sizeof(std::uint32_t);
  for (std::uint32_t i = 0; i < h.nrlimits; ++i)
    if (out->rlimits[i].resource < 0 || out->rlimits[i].resource >= RLIM_NLIMITS) return false;
  char** ptrs = reinterpret_cast<char**>(buf + ((h.bytes + alignof(char*) - 1) & ~(alignof(char*) - 1)));
  // Strings: cwd, the exec path (kLaunchExecPath), argv, env, each NUL-terminated, filling the
  // block exactly.
  std::size_t n = 0;
  const std::size_t lead = (h.flags & kLaunchExecPath) != 0 ? 2 : 1;
  const std::size_t strings = lead + std::size_t{h.argc} + h.envc;
  for (std::size_t i = 0; i < strings; ++i) {
    if (off >= h.bytes) return false;
    char* s = buf + off;
    const void* nul = std::memchr(s, '\0', h.bytes - off);
    if (nul == nullptr) return false;
    off = static_cast<std::size_t>(static_cast<const char*>(nul) - buf) + 1;
    if (i == 0) {
      out->cwd = s;
      continue;
    }
    if (i < lead) {
      out->exec_path = s;
      continue;
    }
    ptrs[n++] = s;
    if (i == lead - 1 + h.argc) ptrs[n++] = nullptr;  // end of argv
  }
  if (off != h.bytes) return false;
  ptrs[n] = nullptr;  // end of envp
  out->argv = ptrs;
  out->envp = ptrs + h.argc + 1;
  return out->argv[0][0] != '\0';
}

}  // namespace

Result<std::string> encode_launch_block(const JobSpec& spec, int tty_index, std::uint64_t spread_cookie) {
  LaunchBlockHeader h;
  h.magic = kLaunchBlockMagic;
  if (spread_cookie != 0) {
    h.flags |= kLaunchSpread;
    h.spread_cookie = spread_cookie;
  }
  if (!spec.exec_path.empty()) h.flags |= kLaunchExecPath;
  if (spec.tty) {
    if (tty_index < 0) return make_error("job {}: a terminal was asked for but none was opened", spec.id);
    h.tty_streams = (spec.tty->in ? kTtyStdin : 0) | (spec.tty->out ? kTtyStdout : 0) | (spec.tty->err ? kTtyStderr : 0);
    h.tty_index = static_cast<std::uint32_t>(tty_index);
  }
  h.umask = spec.umask;
  h.uid = spec.uid;
  h.gid = spec.gid;
  h.ngroups = static_cast<std::uint32_t>(spec.groups.size());
  h.nrlimits = static_cast<std::uint32_t>(spec.rlimits.size());
  h.argc = static_cast<std::uint32_t>(spec.argv.size());
  h.envc = static_cast<std::uint32_t>(spec.env.size());
  std::size_t bytes = sizeof h + spec.groups.size() * sizeof(std::uint32_t) +
                      spec.rlimits.size() * sizeof(LaunchRlimit) + spec.cwd.size() + 1 +
                      (spec.exec_path.empty() ? 0 : spec.exec_path.size() + 1);
  for (const auto& a : spec.argv) bytes += a.size() + 1;
  for (const auto& e : spec.env) bytes += e.size() + 1;
  if (bytes > kMaxLaunchBlockBytes)
    return make_error("job {}: spec of {} bytes exceeds {}", spec.id, bytes, kMaxLaunchBlockBytes);
  h.bytes = static_cast<std::uint32_t>(bytes);
  std::string out;
  out.reserve(bytes);
  out.append(reinterpret_cast<const char*>(&h), sizeof h);
  for (const auto& r : spec.rlimits) {
    LaunchRlimit l;
    l.resource = r.resource;
    l.cur = r.cur;
    l.max = r.max;
    out.append(reinterpret_cast<const char*>(&l), sizeof l);
  }
  for (gid_t g : spec.groups) {
    const std::uint32_t v = g;
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  auto add = [&out](const std::string& str) {
    out.append(str);
    out.push_back('\0');
  };
  add(spec.cwd);
  if (!spec.exec_path.empty()) add(spec.exec_path);
  for (const auto& a : spec.argv) add(a);
  for (const auto& e : spec.env) add(e);
  return out;
}

Status send_launch_block(int control_fd, const std::string& block) {
  if (auto s = write_all(control_fd, block); !s.ok())
    return Error{s.error().code, "osmo init is gone (cannot hand it the job)"};
  return ok_status();
}

[[noreturn]] void job_init_main(const InitFds& fds) {
  // The shepherd is our parent (outside the namespace, so getppid() is 0 here): die with it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::prctl(PR_SET_NAME, "osmo-init");
  if (fds.map_uid >= 0)
    if (int e = platform::map_own_ids(static_cast<uid_t>(fds.map_uid), static_cast<gid_t>(fds.map_gid)); e != 0)
      setup_failed(fds, JobSetupStage::kUserNs, e);
  close_fds_except({0, 1, 2, fds.job_stdin, fds.job_stdout, fds.job_stderr, fds.report,
                    fds.control});
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::close(devnull);
  }

  // A private view of the mounts, still receiving the node's (slave), with a /proc of our own PID
  // namespace on top: the job's /proc/self is itself.
  if (::unshare(CLONE_NEWNS) != 0) setup_failed(fds, JobSetupStage::kMountNs, errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0 ||
      ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    setup_failed(fds, JobSetupStage::kProcMount, errno);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  // The job's stack while it runs in our memory (see become_job) and the buffer for the launch
  // block: mapped and faulted in now, off the path from the spec to the exec.
  constexpr std::size_t kChildStackBytes = 64 * 1024;
  constexpr std::size_t kChildStackSlackBytes = 32 * 1024;  // become_job and execvp's own frames
  char* const stack_top = map_child_stack(kChildStackBytes, kLaunchBufferBytes);
  if (stack_top == nullptr) setup_failed(fds, JobSetupStage::kFork, errno);
  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) setup_failed(fds, JobSetupStage::kFork, errno);

  report(fds.report, InitReportKind::kReady);
  Launch launch;
  if (!receive_launch(fds.control, stack_top, kLaunchBufferBytes, &launch)) {
    // Also the normal end of a prepared init whose shepherd was discarded unused.
    report(fds.report, InitReportKind::kSetupFailed, static_cast<int>(JobSetupStage::kSpec), EPROTO);
    ::_exit(1);
  }
  // Spreading: the filter goes on init itself (inherited by the clone below and everything the
  // job starts; init never execs). Without it the job simply does not spread.
  int listener = -1;
  if ((launch.h->flags & kLaunchSpread) != 0) {
    auto l = spread::install_exec_filter(launch.h->spread_cookie);
    if (l.ok()) listener = l->release();
  }
  JobChild child{&launch, &fds, errpipe[1]};
  // execvp copies argv onto the stack when it runs a script without "#!" (as posix_spawn knows,
  // which sizes its child's stack the same way): a long argv gets a stack to match.
  char* job_stack_top = stack_top;
  const std::size_t argv_bytes = (std::size_t{launch.h->argc} + 2) * sizeof(char*);
  if (argv_bytes + kChildStackSlackBytes > kChildStackBytes) {
    job_stack_top = map_child_stack(argv_bytes + kChildStackBytes, 0);  // lives until init exits
    if (job_stack_top == nullptr) setup_failed(fds, JobSetupStage::kFork, errno);
  }
  // Returns once the job has exec'd or died (CLONE_VFORK).
  const pid_t job = ::clone(become_job, job_stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
  if (job < 0) setup_failed(fds, JobSetupStage::kFork, errno);
  ::close(errpipe[1]);
  ::close(fds.job_stdin);
  ::close(fds.job_stdout);
  ::close(fds.job_stderr);

  StageError e{};
  // End of file: the job's exec closed the pipe (close-on-exec), so it runs.
  const std::size_t n = read_full(errpipe[0], &e, sizeof e).bytes;
  ::close(errpipe[0]);
  if (n == sizeof e) {
    int st = 0;
    ::waitpid(job, &st, 0);
    if (static_cast<int>(e.stage) == 0)
      report(fds.report, InitReportKind::kExecFailed, 0, e.err);
    else
      report(fds.report, InitReportKind::kSetupFailed, static_cast<int>(e.stage), e.err);
    ::_exit(0);
  }
  report(fds.report, InitReportKind::kStarted, job, 0, listener);
  // Reap nothing until the shepherd has looked up the job's pid as the node sees it (in our
  // children list, where even a job that has already exited stays until we reap it). It acks
  // with an empty request.
  for (;;) {
    InitSignalRequest ack;
    if (read_full(fds.control, &ack, sizeof ack).bytes != sizeof ack) ::_exit(1);  // shepherd gone
    if (ack.signo == 0) break;
  }

  pollfd pfd[2] = {{sfd, POLLIN, 0}, {fds.control, POLLIN, 0}};
  for (;;) {
    if (::poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      ::_exit(1);
    }
    if (pfd[0].revents != 0) {
      signalfd_siginfo si;
      while (::read(sfd, &si, sizeof si) > 0) {
      }
      // Reap everything: init inherits every orphan of the namespace.
      for (;;) {
        int st = 0;
        const pid_t p = ::waitpid(-1, &st, WNOHANG);
        if (p <= 0) break;
        if (p == job) {
          report(fds.report, InitReportKind::kExited, st);
          // Leaving kills the rest of the namespace, as when a container's init exits.
          ::_exit(0);
        }
      }
    }
    if (pfd[1].revents != 0) {
      InitSignalRequest req;
      const ssize_t r = ::read(fds.control, &req, sizeof req);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) ::_exit(1);  // shepherd gone
      if (r == static_cast<ssize_t>(sizeof req) && req.signo > 0 && req.signo < NSIG)
        ::kill((req.flags & kSignalToGroup) != 0 ? -job : job, req.signo);
    }
  }
}

}  // namespace osmo::run
