// SPDX-License-Identifier: GPL-2.0-or-later
// The process side of `osmo run` without a daemon: a shepherd and an anchor over a socketpair,
// with real programs; also jobs prepared ahead and the launcher's warm shepherds. Needs root (namespaces, credentials); skips otherwise, except under CI=true.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "platform/linux/proc_files.hpp"
#include "relay_harness.hpp"
#include "run/exit_status.hpp"
#include "run/fd_util.hpp"
#include "run/job_table.hpp"
#include "run/launcher.hpp"
#include "run/shepherd.hpp"

namespace osmo::run::testing {
namespace {

class Relay : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") FAIL() << "needs root, and CI must run it";
      GTEST_SKIP() << "needs root (PID/mount/time namespaces, setuid); run as root or in CI";
    }
  }
  JobSpec spec(std::vector<std::string> argv) { return make_spec(std::move(argv), dir_.path); }
  TempDir dir_;
};

TEST_F(Relay, TrueExitsZero) {
  auto o = run_job(spec({"true"}));
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "");
}

TEST_F(Relay, ShortJobStillGetsItsPid) {
  // init does not reap the job before the shepherd has found its pid, however short the job.
  for (int i = 0; i < 5; ++i) {
    JobRun r = start_job(spec({"true"}), /*verbose=*/true);
    auto o = finish_job(r, "");
    EXPECT_EQ(o.code, 0);
    EXPECT_NE(o.err.find(" as pid "), std::string::npos) << o.err;
    EXPECT_EQ(o.err.find(" as pid 0\n"), std::string::npos) << o.err;
  }
}

TEST_F(Relay, ExitCodePassesThrough) {
  EXPECT_EQ(run_job(spec({"sh", "-c", "exit 7"})).code, 7);
}

TEST_F(Relay, StdoutAndStderrStaySeparate) {
  auto o = run_job(spec({"sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"}));
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "out1\nout2\n");
  EXPECT_EQ(o.err, "err1\nerr2\n");
}

TEST_F(Relay, CatOfBinaryStreamIsExact) {
  std::string data(48 << 20, '\0');
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
    const auto v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  auto o = run_job(spec({"cat"}), data);
  EXPECT_EQ(o.code, 0);
  ASSERT_EQ(o.out.size(), data.size());
  EXPECT_TRUE(o.out == data) << "stdout differs from stdin";
}

TEST_F(Relay, KilledBySignalGives128PlusN) {
  EXPECT_EQ(run_job(spec({"sh", "-c", "kill -SEGV $$"})).code, 128 + SIGSEGV);
}

TEST_F(Relay, CommandNotFound) {
  auto o = run_job(spec({"osmo-no-such-program-xyz"}));
  EXPECT_EQ(o.code, kExitNotFound);
  EXPECT_EQ(o.err, "osmo run: osmo-no-such-program-xyz: command not found\n");
}

TEST_F(Relay, NotExecutable) {
  auto o = run_job(spec({"/etc/passwd"}));
  EXPECT_EQ(o.code, kExitNotExecutable);
  EXPECT_EQ(o.err, "osmo run: /etc/passwd: Permission denied\n");
}

TEST_F(Relay, MissingCwdIsRefused) {
  auto s = spec({"true"});
  s.cwd = "/nonexistent/osmo-dir";
  auto o = run_job(s);
  EXPECT_EQ(o.code, kExitRefused);
  EXPECT_NE(o.err.find("cannot enter the working directory /nonexistent/osmo-dir"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("No such file or directory"), std::string::npos) << o.err;
}

TEST_F(Relay, UnknownUserIsRefused) {
  auto s = spec({"true"});
  s.uid = 4'000'000'000u;
  auto o = run_job(s);
  EXPECT_EQ(o.code, kExitRefused);
  EXPECT_NE(o.err.find("has no user with uid 4000000000"), std::string::npos) << o.err;
}

TEST_F(Relay, EnvCwdUmaskCarried) {
  auto s = spec({"sh", "-c", "echo $OSMO_TEST_VAR; pwd; umask"});
  s.env = {"OSMO_TEST_VAR=hello world", "PATH=/usr/bin:/bin"};
  s.cwd = "/tmp";
  s.umask = 027;
  auto o = run_job(s);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "hello world\n/tmp\n0027\n");
}

TEST_F(Relay, RunsAsTheCallerWithGroups) {
  auto s = spec({"sh", "-c", "id -u; id -g; id -G"});
  s.uid = 65534;
  s.gid = 65534;
  s.groups = {65534, 100};
  auto o = run_job(s);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "65534\n65534\n65534 100\n");
}

TEST_F(Relay, RlimitsCarried) {
  auto s = spec({"sh", "-c", "ulimit -n; ulimit -Hn"});
  for (auto& r : s.rlimits)
    if (r.resource == RLIMIT_NOFILE) r.cur = 321, r.max = 654;
  auto o = run_job(s);
  EXPECT_EQ(o.out, "321\n654\n");
}

TEST_F(Relay, ScriptWithoutInterpreterLineAndLongArgv) {
  // execvp runs such a script with /bin/sh, copying argv onto the stack of the job's clone; a long
  // argv also overflows init's preallocated launch buffer.
  const std::string script = dir_.path + "/count-args";
  ASSERT_TRUE(write_all(UniqueFd(::open(script.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0755)).get(),
                        "echo $#\n").ok());
  std::vector<std::string> argv{script};
  for (int i = 0; i < 20000; ++i) argv.push_back("arg" + std::to_string(i));
  auto o = run_job(spec(argv));
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "20000\n");
}

TEST_F(Relay, OwnPidNamespaceAndProc) {
  // The job is PID 2 (init is 1), and /proc is its own: getpid() and /proc/self agree.
  auto o = run_job(spec({"python3", "-c",
                         "import os; print(os.getpid(), os.readlink('/proc/self'), os.getppid())"}));
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "2 2 1\n");
}

TEST_F(Relay, OwnTimeAndMountNamespaces) {
  auto o = run_job(spec({"sh", "-c", "readlink /proc/self/ns/time /proc/self/ns/mnt"}));
  char self_time[64] = {}, self_mnt[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/time", self_time, sizeof self_time - 1), 0);
  ASSERT_GT(::readlink("/proc/self/ns/mnt", self_mnt, sizeof self_mnt - 1), 0);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out.find(self_time), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find(self_mnt), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("time:["), std::string::npos) << o.out;
}

TEST_F(Relay, OrphansDieWithTheJob) {
  // A background child holding stdout must not keep the job alive after the main process ends.
  auto o = run_job(spec({"sh", "-c", "sleep 1000 & echo started"}));
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "started\n");
}

TEST_F(Relay, InteractiveStdin) {
  JobRun r = start_job(spec({"python3", "-u", "-c",
                             "import sys\nfor line in sys.stdin: print(line.strip().upper(), flush=True)"}));
  ASSERT_TRUE(write_all(r.stdin_w, "hello\n").ok());
  EXPECT_EQ(read_until(r.stdout_r, "HELLO\n"), "HELLO\n");
  ASSERT_TRUE(write_all(r.stdin_w, "again\n").ok());
  EXPECT_EQ(read_until(r.stdout_r, "AGAIN\n"), "AGAIN\n");
  auto o = finish_job(r, "");
  EXPECT_EQ(o.code, 0);
}

// A job with a terminal (JobSpec::tty; the anchor's end of it is covered by the tmux tests on the
// testbed): only the streams named get the pty, which is the job's controlling terminal with the
// given size, and its output reaches the anchor's stdout as `tty` frames.
JobSpec with_tty(JobSpec s, bool in, bool out, bool err) {
  TtySpec t;
  t.in = in;
  t.out = out;
  t.err = err;
  t.rows = 33;
  t.cols = 77;
  s.tty = t;
  return s;
}

TEST_F(Relay, PtyOnlyForTheStreamsNamed) {
  auto o = run_job(with_tty(spec({"sh", "-c", "readlink /proc/self/fd/1; stty size </dev/tty; test -t 0 || echo stdin-pipe; echo to-err >&2"}),
                            false, true, false));
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("/dev/pts/"), std::string::npos) << o.out;
  // Output processing is the pty's own (the kernel's defaults here: \n becomes \r\n).
  EXPECT_NE(o.out.find("\r\n33 77\r\nstdin-pipe\r\n"), std::string::npos) << o.out;
  EXPECT_EQ(o.err, "to-err\n");
}

TEST_F(Relay, PtyIsTheControllingTerminalOfANewSession) {
  auto o = run_job(with_tty(spec({"python3", "-c",
                                  "import os; print(os.getsid(0) == os.getpid(), os.tcgetpgrp(0) == os.getpgrp(),"
                                  " os.stat(os.ttyname(0)).st_uid == os.getuid())"}),
                            true, true, true));
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("True True True"), std::string::npos) << o.out;
}

TEST_F(Relay, EndOfInputOnAPtyIsTheEofCharacter) {
  // The anchor's stdin ends: the job reads EOF from its terminal, also after an unfinished line.
  auto o = run_job(with_tty(spec({"cat"}), true, true, false), "one\ntwo");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("one\r\n"), std::string::npos) << o.out;
  // The unfinished line came through too: echoed, and copied by cat.
  EXPECT_EQ(o.out.find("two", o.out.find("two") + 3) != std::string::npos, true) << o.out;
}

TEST_F(Relay, SigtermForwarded) {
  JobRun r = start_job(spec({"sh", "-c", "echo ready; exec sleep 60"}));
  EXPECT_EQ(read_until(r.stdout_r, "ready\n"), "ready\n");
  ::kill(r.anchor, SIGTERM);
  auto o = finish_job(r, "");
  EXPECT_EQ(o.code, 128 + SIGTERM);
}

TEST_F(Relay, SigintForwardedAndHandledByJob) {
  JobRun r = start_job(spec({"sh", "-c", "trap 'echo got-int; exit 3' INT; echo ready; while :; do sleep 0.05; done"}));
  EXPECT_EQ(read_until(r.stdout_r, "ready\n"), "ready\n");
  ::kill(r.anchor, SIGINT);
  auto o = finish_job(r, "");
  EXPECT_EQ(o.out, "got-int\n");
  EXPECT_EQ(o.code, 3);
}

TEST_F(Relay, StopAndContinue) {
  // SIGTSTP to the anchor stops the job and the anchor; SIGCONT resumes both.
  JobRun r = start_job(spec({"sh", "-c", "echo ready; read x; echo after-$x"}));
  EXPECT_EQ(read_until(r.stdout_r, "ready\n"), "ready\n");
  ::kill(r.anchor, SIGTSTP);
  int st = 0;
  ASSERT_EQ(::waitpid(r.anchor, &st, WUNTRACED), r.anchor);
  EXPECT_TRUE(WIFSTOPPED(st));
  auto jobs = list_jobs(r.state_dir);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  for (int i = 0; i < 100 && list_jobs(r.state_dir)->at(0).state != "stopped"; ++i) ::usleep(20'000);
  EXPECT_EQ(list_jobs(r.state_dir)->at(0).state, "stopped");
  ::kill(r.anchor, SIGCONT);
  for (int i = 0; i < 100 && list_jobs(r.state_dir)->at(0).state == "stopped"; ++i) ::usleep(20'000);
  EXPECT_NE(list_jobs(r.state_dir)->at(0).state, "stopped");
  auto o = finish_job(r, "go\n");
  EXPECT_EQ(o.out, "after-go\n");
  EXPECT_EQ(o.code, 0);
}

TEST_F(Relay, ClosedStdoutGivesSigpipe) {
  JobRun r = start_job(spec({"yes"}));
  EXPECT_NE(read_until(r.stdout_r, "y\ny\n").find("y\ny\n"), std::string::npos);
  ::close(r.stdout_r);
  r.stdout_r = -1;
  auto o = finish_job(r, "");
  EXPECT_EQ(o.code, 128 + SIGPIPE);
}

TEST_F(Relay, RecordListedWhileRunningAndRemovedAfter) {
  auto s = spec({"sh", "-c", "echo ready; read x"});
  JobRun r = start_job(s);
  EXPECT_EQ(read_until(r.stdout_r, "ready\n"), "ready\n");
  auto jobs = list_jobs(r.state_dir);
  ASSERT_TRUE(jobs.ok()) << jobs.error().str();
  ASSERT_EQ(jobs->size(), 1u);
  const auto& j = jobs->at(0);
  EXPECT_EQ(j.rec.id, s.id);
  EXPECT_EQ(j.rec.cmd, "sh -c echo ready; read x");
  EXPECT_GT(j.rec.job_pid, 0);
  EXPECT_NE(j.rec.job_pid, r.shepherd);
  // The pid is the one this node sees: its NSpid line lists it and then 2 inside the job.
  EXPECT_EQ(platform::process_start_ticks(j.rec.job_pid), j.rec.job_start);
  auto o = finish_job(r, "x\n");
  EXPECT_EQ(o.code, 0);
  EXPECT_TRUE(list_jobs(dir_.path)->empty());
}

TEST_F(Relay, KillByIdThroughTable) {
  auto s = spec({"sh", "-c", "echo ready; exec sleep 60"});
  JobRun r = start_job(s);
  EXPECT_EQ(read_until(r.stdout_r, "ready\n"), "ready\n");
  auto other_user = signal_job(r.state_dir, s.id, SIGKILL, 12345);
  EXPECT_FALSE(other_user.ok());
  auto missing = signal_job(r.state_dir, "ffffffffffff", SIGKILL, 0);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(*missing);
  auto hit = signal_job(r.state_dir, s.id.substr(0, 6), SIGKILL, 0);
  ASSERT_TRUE(hit.ok()) << hit.error().str();
  EXPECT_TRUE(*hit);
  EXPECT_EQ(finish_job(r, "").code, 128 + SIGKILL);
}

TEST_F(Relay, AnchorKilledKillsTheJob) {
  JobRun r = start_job(spec({"sh", "-c", "echo ready; exec sleep 60"}));
  EXPECT_EQ(read_until(r.stdout_r, "ready\n"), "ready\n");
  auto jobs = list_jobs(r.state_dir);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  const pid_t job = jobs->at(0).rec.job_pid;
  const auto start = jobs->at(0).rec.job_start;
  ::kill(r.anchor, SIGKILL);
  auto o = finish_job(r, "");
  EXPECT_EQ(o.code, 1000 + SIGKILL);
  // finish_job reaped the shepherd, which kills the job's namespace before it exits.
  EXPECT_NE(platform::process_start_ticks(job), start) << "job pid " << job << " survived its anchor";
  EXPECT_TRUE(list_jobs(dir_.path)->empty());
}

TEST_F(Relay, ShepherdDeathIsReportedAsNodeLoss) {
  JobRun r = start_job(spec({"sh", "-c", "echo ready; exec sleep 60"}), /*verbose=*/true);
  EXPECT_EQ(read_until(r.stdout_r, "ready\n"), "ready\n");
  ::kill(r.shepherd, SIGKILL);
  auto o = finish_job(r, "");
  EXPECT_EQ(o.code, kExitNodeDied);
  EXPECT_NE(o.err.find("osmo run: lost node testnode while job"), std::string::npos) << o.err;
}

TEST_F(Relay, SilentNodeIsDetected) {
  // A frozen node (here: its shepherd stopped) keeps the stream open but sends no heartbeat.
  JobRun r = start_job(spec({"sh", "-c", "echo ready; exec sleep 60"}));
  EXPECT_EQ(read_until(r.stdout_r, "ready\n"), "ready\n");
  ::kill(r.shepherd, SIGSTOP);
  auto o = finish_job(r, "", [&] { ::kill(r.shepherd, SIGCONT); });
  EXPECT_EQ(o.code, kExitNodeDied);
  EXPECT_NE(o.err.find("stopped answering"), std::string::npos) << o.err;
}

// --- Jobs prepared ahead (warm shepherds) ---------------------------------------------------

// The job's own pid, then "pid:[...] mnt:[...] time:[...] END" as the job sees them; it then
// waits for a line on stdin, so that jobs compared with each other are alive at the same time
// (the kernel reuses the inode number of a namespace that is gone).
const char* const kNsProbe =
    "echo $$; readlink /proc/self/ns/pid /proc/self/ns/mnt /proc/self/ns/time | tr '\\n' ' '; "
    "echo END; read x";

std::string our_namespaces() {
  std::string out;
  for (const char* ns : {"pid", "mnt", "time"}) {
    char buf[64] = {};
    if (::readlink((std::string("/proc/self/ns/") + ns).c_str(), buf, sizeof buf - 1) > 0) out += buf;
    out += ' ';
  }
  return out;
}

// Runs the probe jobs (started, all alive at once), then checks that each got namespaces of its
// own, never ours nor another job's.
void expect_distinct_namespaces(std::vector<JobRun> jobs) {
  std::vector<Outcome> runs;
  std::vector<std::string> heads;
  for (auto& r : jobs) heads.push_back(read_until(r.stdout_r, "END\n"));
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    runs.push_back(finish_job(jobs[i], "go\n"));
    runs.back().out = heads[i] + runs.back().out;
  }
  const std::string ours = our_namespaces();
  std::vector<std::string> seen;
  for (const auto& o : runs) {
    EXPECT_EQ(o.code, 0) << o.err;
    ASSERT_EQ(o.out.rfind("2\n", 0), 0u) << o.out;  // PID 2 in its own PID namespace
    const std::string ns = o.out.substr(2);
    for (const char* kind : {"pid:[", "mnt:[", "time:["}) {
      const auto at = ns.find(kind);
      ASSERT_NE(at, std::string::npos) << ns;
      const std::string id = ns.substr(at, ns.find(']', at) - at + 1);
      EXPECT_EQ(ours.find(id), std::string::npos) << id << " is ours";
      for (const auto& other : seen) EXPECT_EQ(other.find(id), std::string::npos) << id << " shared";
    }
    seen.push_back(ns);
  }
}

TEST_F(Relay, PreparedAheadJobsGetNamespacesOfTheirOwn) {
  std::vector<JobRun> jobs;
  for (int i = 0; i < 3; ++i)
    jobs.push_back(start_job(spec({"sh", "-c", kNsProbe}), /*verbose=*/false, /*prepared_ahead=*/true));
  expect_distinct_namespaces(std::move(jobs));
}

TEST_F(Relay, PreparedAheadJobCarriesEnvCwdUmaskAndFailures) {
  JobSpec s = spec({"sh", "-c", "echo $OSMO_T; pwd; umask"});
  s.env.push_back("OSMO_T=warm");
  s.cwd = "/tmp";
  s.umask = 027;
  JobRun r = start_job(s, false, true);
  auto o = finish_job(r, "");
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "warm\n/tmp\n0027\n");
  JobRun nf = start_job(spec({"osmo-no-such-program"}), false, true);
  auto n = finish_job(nf, "");
  EXPECT_EQ(n.code, kExitNotFound);
  EXPECT_NE(n.err.find("osmo-no-such-program: command not found"), std::string::npos) << n.err;
}

TEST_F(Relay, UnusedPreparedJobLeavesNothingBehind) {
  int to_parent[2], to_child[2];
  ASSERT_EQ(::pipe2(to_parent, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(to_child, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    auto p = PreparedJob::create();
    const pid_t init = p.ok() ? p->init_pid : -1;
    (void)!::write(to_parent[1], &init, sizeof init);
    char go;
    (void)!::read(to_child[0], &go, 1);
    ::_exit(0);  // p's destructor kills init (and so its namespaces)
  }
  pid_t init = -1;
  ASSERT_EQ(::read(to_parent[0], &init, sizeof init), static_cast<ssize_t>(sizeof init));
  ASSERT_GT(init, 0);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, init, 0)));
  ASSERT_TRUE(pidfd.valid()) << std::strerror(errno);
  ASSERT_EQ(::write(to_child[1], "g", 1), 1);
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  pollfd p{pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1) << "osmo init of an unused prepared job still runs";
  for (int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) ::close(fd);
}

// The children of `pid` as the node sees them (empty if it has none or is gone).
std::vector<pid_t> children_of(pid_t pid) {
  char path[64], buf[256];
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
  std::vector<pid_t> out;
  std::string text(platform::read_small_file(path, buf, sizeof buf));
  for (std::size_t at = 0; at < text.size();) {
    const auto end = text.find(' ', at);
    out.push_back(std::atoi(text.substr(at, end - at).c_str()));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

TEST_F(Relay, LauncherRunsEachJobInAWarmShepherd) {
  auto launcher = ShepherdLauncher::start(Logger("testnode", "launcher"));
  ASSERT_TRUE(launcher.ok()) << launcher.error().str();
  std::vector<JobRun> jobs;
  for (int i = 0; i < 3; ++i) {
    const JobSpec s = spec({"sh", "-c", kNsProbe});
    jobs.push_back(start_job_with(s, [&](int fd) { EXPECT_TRUE((*launcher)->launch(fd, s).ok()); }));
  }
  expect_distinct_namespaces(std::move(jobs));
}

TEST_F(Relay, WarmShepherdDiesWithTheLauncher) {
  auto launcher = ShepherdLauncher::start(Logger("testnode", "launcher"));
  ASSERT_TRUE(launcher.ok()) << launcher.error().str();
  // The warm shepherd and its init appear shortly after the launcher starts.
  std::vector<pid_t> shepherds, inits;
  for (int i = 0; i < 200 && inits.empty(); ++i) {
    shepherds = children_of((*launcher)->pid());
    if (shepherds.size() == 1) inits = children_of(shepherds[0]);
    if (inits.empty()) ::usleep(10'000);
  }
  ASSERT_EQ(shepherds.size(), 1u);
  ASSERT_EQ(inits.size(), 1u);
  UniqueFd shepherd_fd(static_cast<int>(::syscall(SYS_pidfd_open, shepherds[0], 0)));
  UniqueFd init_fd(static_cast<int>(::syscall(SYS_pidfd_open, inits[0], 0)));
  ASSERT_TRUE(shepherd_fd.valid() && init_fd.valid()) << std::strerror(errno);
  launcher->reset();  // the daemon goes away: its launcher exits
  for (int fd : {shepherd_fd.get(), init_fd.get()}) {
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 5000), 1) << "a warm shepherd or its init outlived the launcher";
  }
}

}  // namespace
}  // namespace osmo::run::testing
