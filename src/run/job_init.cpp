// osmo init and the job's own setup between fork and exec (see job_init.hpp).
#include "run/job_init.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
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
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "run/fd_util.hpp"
#include "run/frame.hpp"

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
  }
  return "set up the job";
}

namespace {

void report(int fd, InitReportKind kind, std::int32_t a = 0, std::int32_t b = 0) {
  InitReport r{kind, a, b, 0};
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

// What the job's child needs; it runs on its own stack but in init's memory (CLONE_VM).
struct JobChild {
  const JobSpec* spec;
  const InitFds* fds;
  int err_fd;
  char** argv;
  char** envp;
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
  const JobSpec& spec = *c.spec;
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
  // Its own process group, so that a terminal-style signal reaches its children too.
  ::setpgid(0, 0);
  if (::dup2(c.fds->job_stdin, 0) < 0 || ::dup2(c.fds->job_stdout, 1) < 0 ||
      ::dup2(c.fds->job_stderr, 2) < 0)
    fail(JobSetupStage::kStdio);
  close_fds_except({0, 1, 2, err_fd});
  // Limits first, while still root: raising a hard limit needs CAP_SYS_RESOURCE.
  for (const auto& r : spec.rlimits) {
    rlimit l{r.cur, r.max};
    if (::setrlimit(r.resource, &l) != 0) fail(JobSetupStage::kRlimit);
  }
  if (::syscall(SYS_setgroups, spec.groups.size(), spec.groups.data()) != 0)
    fail(JobSetupStage::kGroups);
  if (::syscall(SYS_setresgid, spec.gid, spec.gid, spec.gid) != 0) fail(JobSetupStage::kGid);
  if (::syscall(SYS_setresuid, spec.uid, spec.uid, spec.uid) != 0) fail(JobSetupStage::kUid);
  ::umask(static_cast<mode_t>(spec.umask));
  // As the caller, so that a directory the caller may not enter is refused like at home.
  if (::chdir(spec.cwd.c_str()) != 0) fail(JobSetupStage::kChdir);
  environ = c.envp;
  ::execvp(c.argv[0], c.argv);
  const int exec_errno = errno;
  StageError e{JobSetupStage{0}, exec_errno};
  (void)!::write(err_fd, &e, sizeof e);
  ::_exit(exec_errno == ENOENT ? 127 : 126);
}

// Reads the spec the shepherd sends (u32 length + JSON). Fails if the shepherd is gone.
Result<JobSpec> read_spec(int fd) {
  auto read_exact = [fd](char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t r = ::read(fd, p, n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  };
  char len_bytes[4];
  if (!read_exact(len_bytes, sizeof len_bytes)) return make_error("the shepherd is gone");
  const std::uint32_t len = read_u32(len_bytes);
  if (len > kMaxInitSpecBytes) return make_error("job spec of {} bytes", len);
  std::string text(len, '\0');
  if (!read_exact(text.data(), len)) return make_error("the shepherd is gone");
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error("job spec is not JSON");
  return job_spec_from_json(j);
}

}  // namespace

Status send_init_spec(int control_fd, const JobSpec& spec) {
  const std::string text = to_json(spec).dump();
  if (text.size() > kMaxInitSpecBytes)
    return make_error("job {}: spec of {} bytes exceeds {}", spec.id, text.size(), kMaxInitSpecBytes);
  std::string msg(4, '\0');
  const auto len = static_cast<std::uint32_t>(text.size());
  for (int i = 0; i < 4; ++i) msg[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  msg += text;
  if (auto s = write_all(control_fd, msg); !s.ok())
    return make_error("job {}: osmo init is gone ({})", spec.id, s.error().str());
  return ok_status();
}

[[noreturn]] void job_init_main(const InitFds& fds) {
  // The shepherd is our parent (outside the namespace, so getppid() is 0 here): die with it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::prctl(PR_SET_NAME, "osmo-init");
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
  // The job's stack while it runs in our memory (see become_job); allocated now, off the path
  // from the spec to the exec.
  constexpr std::size_t kChildStackBytes = 256 * 1024;
  void* stack = ::mmap(nullptr, kChildStackBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) setup_failed(fds, JobSetupStage::kFork, errno);

  report(fds.report, InitReportKind::kReady);
  auto parsed = read_spec(fds.control);
  if (!parsed.ok()) {
    // Also the normal end of a prepared init whose shepherd was discarded unused.
    report(fds.report, InitReportKind::kSetupFailed, static_cast<int>(JobSetupStage::kSpec), EPROTO);
    ::_exit(1);
  }
  const JobSpec& spec = *parsed;

  std::vector<std::string> env_store = spec.env;
  std::vector<char*> argv, envp;
  std::vector<std::string> argv_store = spec.argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) setup_failed(fds, JobSetupStage::kFork, errno);
  JobChild child{&spec, &fds, errpipe[1], argv.data(), envp.data()};
  // Returns once the job has exec'd or died (CLONE_VFORK).
  const pid_t job = ::clone(become_job, static_cast<char*>(stack) + kChildStackBytes,
                            CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
  if (job < 0) setup_failed(fds, JobSetupStage::kFork, errno);
  ::munmap(stack, kChildStackBytes);
  ::close(errpipe[1]);
  ::close(fds.job_stdin);
  ::close(fds.job_stdout);
  ::close(fds.job_stderr);

  StageError e{};
  ssize_t n;
  do n = ::read(errpipe[0], &e, sizeof e);
  while (n < 0 && errno == EINTR);
  ::close(errpipe[0]);
  if (n == static_cast<ssize_t>(sizeof e)) {
    int st = 0;
    ::waitpid(job, &st, 0);
    if (static_cast<int>(e.stage) == 0)
      report(fds.report, InitReportKind::kExecFailed, 0, e.err);
    else
      report(fds.report, InitReportKind::kSetupFailed, static_cast<int>(e.stage), e.err);
    ::_exit(0);
  }
  report(fds.report, InitReportKind::kStarted, job);
  // Reap nothing until the shepherd has looked up the job's pid as the node sees it (in our
  // children list, where even a job that has already exited stays until we reap it). It acks
  // with an empty request.
  for (;;) {
    InitSignalRequest ack;
    const ssize_t r = ::read(fds.control, &ack, sizeof ack);
    if (r < 0 && errno == EINTR) continue;
    if (r != static_cast<ssize_t>(sizeof ack)) ::_exit(1);  // shepherd gone
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
