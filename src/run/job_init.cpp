// osmo init and the job's own setup between fork and exec (see job_init.hpp).
#include "run/job_init.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

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
  }
  return "set up the job";
}

namespace {

void report(int fd, InitReportKind kind, std::int32_t a = 0, std::int32_t b = 0) {
  InitReport r{kind, a, b, 0};
  // A short or failed write means the shepherd is gone; init then dies with it anyway.
  (void)!::write(fd, &r, sizeof r);
}

struct StageError {
  JobSetupStage stage;
  int err;
};

// Between fork and exec in the job: everything that makes it look like the caller's process.
// On failure, writes (stage, errno) to `err_fd` and exits; on success the exec closes `err_fd`
// (O_CLOEXEC), which tells init that the job runs.
[[noreturn]] void become_job(const JobSpec& spec, const InitFds& fds, int err_fd,
                             std::vector<char*>& argv, std::vector<char*>& envp) {
  auto fail = [&](JobSetupStage stage) {
    StageError e{stage, errno};
    (void)!::write(err_fd, &e, sizeof e);
    ::_exit(127);
  };
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) fail(JobSetupStage::kSignals);
  // The shepherd ignores SIGPIPE; the job must not inherit that (`osmo run yes | head` relies on it).
  for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
  // Its own process group, so that a terminal-style signal reaches its children too.
  ::setpgid(0, 0);
  if (::dup2(fds.job_stdin, 0) < 0 || ::dup2(fds.job_stdout, 1) < 0 ||
      ::dup2(fds.job_stderr, 2) < 0)
    fail(JobSetupStage::kStdio);
  close_fds_except({0, 1, 2, err_fd});
  // Limits first, while still root: raising a hard limit needs CAP_SYS_RESOURCE.
  for (const auto& r : spec.rlimits) {
    rlimit l{r.cur, r.max};
    if (::setrlimit(r.resource, &l) != 0) fail(JobSetupStage::kRlimit);
  }
  if (::setgroups(spec.groups.size(), spec.groups.data()) != 0) fail(JobSetupStage::kGroups);
  if (::setresgid(spec.gid, spec.gid, spec.gid) != 0) fail(JobSetupStage::kGid);
  if (::setresuid(spec.uid, spec.uid, spec.uid) != 0) fail(JobSetupStage::kUid);
  ::umask(static_cast<mode_t>(spec.umask));
  // As the caller, so that a directory the caller may not enter is refused like at home.
  if (::chdir(spec.cwd.c_str()) != 0) fail(JobSetupStage::kChdir);
  // execvp searches the PATH of `environ`, which must be the job's.
  environ = envp.data();
  ::execvp(argv[0], argv.data());
  const int exec_errno = errno;
  StageError e{JobSetupStage{0}, exec_errno};
  (void)!::write(err_fd, &e, sizeof e);
  ::_exit(exec_errno == ENOENT ? 127 : 126);
}

}  // namespace

[[noreturn]] void job_init_main(const JobSpec& spec, const InitFds& fds) {
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
  if (::unshare(CLONE_NEWNS) != 0) {
    report(fds.report, InitReportKind::kSetupFailed, static_cast<int>(JobSetupStage::kMountNs), errno);
    ::_exit(1);
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0 ||
      ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    report(fds.report, InitReportKind::kSetupFailed, static_cast<int>(JobSetupStage::kProcMount), errno);
    ::_exit(1);
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  std::vector<std::string> env_store = spec.env;
  std::vector<char*> argv, envp;
  std::vector<std::string> argv_store = spec.argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) {
    report(fds.report, InitReportKind::kSetupFailed, static_cast<int>(JobSetupStage::kFork), errno);
    ::_exit(1);
  }
  const pid_t job = ::fork();
  if (job < 0) {
    report(fds.report, InitReportKind::kSetupFailed, static_cast<int>(JobSetupStage::kFork), errno);
    ::_exit(1);
  }
  if (job == 0) {
    ::close(errpipe[0]);
    become_job(spec, fds, errpipe[1], argv, envp);
  }
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
