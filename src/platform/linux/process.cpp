// SPDX-License-Identifier: GPL-2.0-or-later
// Detached daemons, process identities and pid files (see process.hpp).
#include "platform/linux/process.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "base/fd_io.hpp"
#include "base/unique_fd.hpp"
#include "platform/linux/netns.hpp"
#include "platform/linux/pidfd.hpp"
#include "platform/linux/proc_files.hpp"
#include "platform/linux/sysfs_io.hpp"

extern char** environ;

namespace osmo::platform {
namespace {

// What the grandchild reports through the status pipe before exec (or instead of it).
struct ChildReport {
  pid_t pid;  // the grandchild's pid, sent first
  int stage;  // 0 = none (only the pid message); else kStage* below
  int err;    // errno at that stage
};
enum : int {
  kStageNone = 0,
  kStageFork,
  kStageCgroup,
  kStageNetns,
  kStageStdio,
  kStageCwd,
  kStageExec
};

const char* stage_name(int s) {
  switch (s) {
    case kStageFork:
      return "second fork";
    case kStageCgroup:
      return "join cgroup";
    case kStageNetns:
      return "enter network namespace";
    case kStageStdio:
      return "redirect stdio";
    case kStageCwd:
      return "chdir";
    case kStageExec:
      return "exec";
    default:
      return "start";
  }
}

// Async-signal-safe decimal formatting for the child after fork.
std::size_t format_pid(pid_t pid, char* buf) {
  char tmp[16];
  std::size_t n = 0;
  auto v = static_cast<unsigned long>(pid);
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < sizeof tmp);
  for (std::size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  return n;
}

[[noreturn]] void child_fail(int report_fd, int stage) {
  ChildReport r{::getpid(), stage, errno};
  (void)write_full(report_fd, &r, sizeof r);  // best effort: the parent also sees our exit
  ::_exit(127);
}

}  // namespace

Result<ProcessIdentity> identify_process(pid_t pid) {
  OSMO_ASSIGN_OR_RETURN(PidStat st, read_pid_stat(pid));
  return ProcessIdentity{pid, st.start_ticks};
}

ProcessState process_state(const ProcessIdentity& id) {
  if (id.pid <= 0) return ProcessState::kGone;
  auto st = read_pid_stat(id.pid);
  if (!st.ok() || st->start_ticks != id.start_ticks) return ProcessState::kGone;
  switch (st->state) {
    case 'Z':
    case 'X':
      return ProcessState::kZombie;
    case 'T':
    case 't':
      return ProcessState::kStopped;
    default:
      return ProcessState::kRunning;
  }
}

const char* process_state_name(ProcessState s) {
  switch (s) {
    case ProcessState::kGone:
      return "gone";
    case ProcessState::kRunning:
      return "running";
    case ProcessState::kStopped:
      return "stopped";
    case ProcessState::kZombie:
      return "zombie";
  }
  return "?";
}

Result<UniqueFd> pin_process(const ProcessIdentity& id) {
  // The pidfd pins one process: once open, a recycled pid cannot redirect what we do with it.
  // Checking the start time after opening it tells whether that process is the one we mean.
  UniqueFd pidfd = pidfd_open(id.pid);
  if (!pidfd && errno != ESRCH) return errno_error("pidfd_open pid {}", id.pid);
  if (!pidfd || process_start_ticks(id.pid) != id.start_ticks)
    return Error{ESRCH, fmt::format("pid {} is no longer the process we started", id.pid)};
  return pidfd;
}

Status signal_process(const ProcessIdentity& id, int sig) {
  OSMO_ASSIGN_OR_RETURN(UniqueFd pidfd, pin_process(id));
  if (pidfd_signal(pidfd.get(), sig) != 0) return errno_error("signal {} to pid {}", sig, id.pid);
  return ok_status();
}

Status write_pid_file(const std::string& path, const ProcessIdentity& id) {
  std::string tmp = path + ".tmp";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return errno_error("create {}", tmp);
    std::string text = fmt::format("{} {}\n", id.pid, id.start_ticks);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      return errno_error("write {}", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error("rename {} to {}", tmp, path);
  return ok_status();
}

Result<ProcessIdentity> read_pid_file(const std::string& path) {
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  std::string_view t = trim(text);
  auto sp = t.find(' ');
  std::uint64_t pid = 0, start = 0;
  if (sp == std::string_view::npos || !parse_u64(t.substr(0, sp), &pid) ||
      !parse_u64(trim(t.substr(sp + 1)), &start) || pid == 0)
    return make_error("{}: expected 'PID START_TICKS', found '{}'", path, t);
  return ProcessIdentity{static_cast<pid_t>(pid), start};
}

Result<ProcessIdentity> spawn_detached(const DetachedSpawnOptions& o) {
  if (o.exe.empty() || o.argv.empty()) return make_error("spawn_detached: no program given");

  // Everything the child needs is prepared here: after fork only async-signal-safe calls.
  if (o.pass_fds.size() > kMaxPassFds)
    return make_error("spawn {}: {} fds to pass, at most {}", o.exe, o.pass_fds.size(), kMaxPassFds);
  UniqueFd log(o.log_path.empty() ? ::open("/dev/null", O_WRONLY | O_CLOEXEC)
                                  : ::open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!log) return errno_error("open log {}", o.log_path.empty() ? "/dev/null" : o.log_path);
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) return errno_error("open /dev/null");
  UniqueFd ns;
  if (!o.netns.empty()) {
    OSMO_ASSIGN_OR_RETURN(ns, open_netns(o.netns));
  }
  std::vector<UniqueFd> procs_files;
  if (o.cgroup != nullptr) {
    for (const auto& d : o.cgroup->dirs().distinct()) {
      std::string f = d + "/cgroup.procs";
      UniqueFd fd(::open(f.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd) return errno_error("open {}", f);
      procs_files.push_back(std::move(fd));
    }
  }
  std::map<std::string, std::string> env_map;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env_map[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& kv : o.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) return make_error("bad environment entry '{}'", kv);
    env_map[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env_map) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = o.argv;
  for (auto& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe for spawning {}", o.exe);
  UniqueFd rd(p[0]), wr(p[1]);
  int pass[kMaxPassFds];
  const int npass = static_cast<int>(o.pass_fds.size());
  for (int i = 0; i < npass; ++i) pass[i] = o.pass_fds[static_cast<std::size_t>(i)];

  pid_t mid = ::fork();
  if (mid < 0) return errno_error("fork for {}", o.exe);
  if (mid == 0) {
    // Intermediate: new session, then fork the daemon and leave, so that the daemon is
    // reparented to init (or the nearest subreaper) and is not a session leader.
    ::setsid();
    pid_t d = ::fork();
    if (d < 0) child_fail(wr.get(), kStageFork);
    if (d > 0) ::_exit(0);
    ChildReport hello{::getpid(), kStageNone, 0};
    (void)write_full(wr.get(), &hello, sizeof hello);
    char buf[16];
    std::size_t n = format_pid(::getpid(), buf);
    for (auto& f : procs_files)
      if (::write(f.get(), buf, n) != static_cast<ssize_t>(n)) child_fail(wr.get(), kStageCgroup);
    if (ns && ::setns(ns.get(), CLONE_NEWNET) != 0) child_fail(wr.get(), kStageNetns);
    if (::dup2(devnull.get(), 0) < 0 || ::dup2(log.get(), 1) < 0 || ::dup2(log.get(), 2) < 0)
      child_fail(wr.get(), kStageStdio);
    // The fds to pass go to 3, 4, ...: first all of them (and our report pipe) above the range
    // they will occupy, so that placing one cannot overwrite another.
    const int report = ::fcntl(wr.get(), F_DUPFD_CLOEXEC, 3 + npass + 64);
    if (report < 0) child_fail(wr.get(), kStageStdio);
    int high[kMaxPassFds];
    for (int i = 0; i < npass; ++i)
      if ((high[i] = ::fcntl(pass[i], F_DUPFD_CLOEXEC, 3 + npass + 64)) < 0) child_fail(report, kStageStdio);
    for (int i = 0; i < npass; ++i)
      if (::dup2(high[i], 3 + i) < 0) child_fail(report, kStageStdio);  // dup2 clears CLOEXEC
    // Whatever else we inherited must not leak into the daemon.
    ::syscall(SYS_close_range, static_cast<unsigned>(3 + npass), ~0U, CLOSE_RANGE_CLOEXEC);
    if (::chdir(o.cwd.c_str()) != 0) child_fail(report, kStageCwd);
    // Ignored signals and the signal mask survive exec: the daemon starts from the defaults,
    // whatever our caller (a shell, a test harness) had set.
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(o.exe.c_str(), argv.data(), envp.data());
    child_fail(report, kStageExec);
  }
  wr.reset();
  int status = 0;
  while (::waitpid(mid, &status, 0) < 0) {
    if (errno != EINTR) return errno_error("waitpid {} (intermediate for {})", mid, o.exe);
  }

  // First report: the daemon's pid. Then EOF (exec closed the CLOEXEC pipe) or a failure report.
  ChildReport reports[2]{};
  const std::size_t got = read_full(rd.get(), reports, sizeof reports).bytes;  // an error ends it like EOF
  if (got < sizeof(ChildReport))
    return make_error("spawn {}: the daemon process vanished before reporting", o.exe);
  if (reports[0].stage != kStageNone) {
    const ChildReport& r = reports[0];
    return Error{r.err, fmt::format("spawn {}: {} failed", o.exe, stage_name(r.stage))};
  }
  if (got >= sizeof reports) {
    const ChildReport& r = reports[1];
    return Error{r.err,
                 fmt::format("spawn {} (pid {}): {} failed", o.exe, r.pid, stage_name(r.stage))};
  }
  pid_t pid = reports[0].pid;
  auto id = identify_process(pid);
  if (!id.ok()) return make_error("spawn {}: pid {} exited right after exec", o.exe, pid);
  if (!o.pid_file.empty()) OSMO_TRY(write_pid_file(o.pid_file, *id));
  return *id;
}

}  // namespace osmo::platform
