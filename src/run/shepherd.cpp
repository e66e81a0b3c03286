// SPDX-License-Identifier: GPL-2.0-or-later
// The job shepherd (see shepherd.hpp): preparing and starting the job, handing it to the relay
// (relay.hpp), and the detached spawn.
#include "run/shepherd.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <cstring>

#include <fmt/format.h>

#include "base/fd_io.hpp"
#include "base/log.hpp"
#include "base/scope_guard.hpp"
#include "platform/linux/fd_passing.hpp"
#include "platform/linux/proc_files.hpp"
#include "platform/linux/user_ns.hpp"
#include "run/exit_status.hpp"
#include "run/fd_util.hpp"
#include "run/frame.hpp"
#include "run/job_init.hpp"
#include "run/job_pty.hpp"
#include "run/job_table.hpp"
#include "run/relay.hpp"
#include "spread/supervisor_link.hpp"

extern char** environ;

namespace osmo::run {

namespace {

// The job's pipes: large, so that a fast writer and the relay exchange big chunks.
constexpr int kPipeBytes = 1 << 20;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The pid (as this node sees it) of init's only child, the job; 0 if it has none.
pid_t find_job_pid(pid_t init_pid) {
  char path[64], buf[64];
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", static_cast<int>(init_pid),
                static_cast<int>(init_pid));
  pid_t pid = 0;
  (void)platform::parse_pid_list(platform::read_small_file(path, buf, sizeof buf), {&pid, 1});
  return pid;
}

std::string exec_failure_line(const std::string& prog, int err) {
  if (err == ENOENT && prog.find('/') == std::string::npos)
    return fmt::format("{}: command not found", prog);
  return fmt::format("{}: {}", prog, std::strerror(err));
}

// A JobHost for a relay without a job (a refused start, the rehearsal).
class NoJobHost final : public JobHost {
 public:
  pid_t job_pid() const override { return -1; }
  pid_t init_pid() const override { return -1; }
  int event_fd() const override { return -1; }
  std::optional<int> on_event() override { return std::nullopt; }
  void signal(int, bool) override {}
  void kill() override {}
};

JobRecord make_record(const JobSpec& spec, const JobHost& host, int tty_index) {
  JobRecord r;
  r.id = spec.id;
  r.home = spec.home;
  r.node = spec.node;
  r.uid = spec.uid;
  r.cmd = command_line(spec.argv);
  r.shepherd_pid = ::getpid();
  r.shepherd_start = platform::process_start_ticks(::getpid());
  r.init_pid = host.init_pid();
  r.job_pid = host.job_pid();
  r.job_start = platform::process_start_ticks(r.job_pid);
  if (tty_index >= 0) r.tty = fmt::format("pts/{}", tty_index);
  r.no_migrate = spec.no_migrate;
  r.parent = spec.parent;
  r.started_unix_ms = unix_ms();
  return r;
}

// Runs one relay for the job, then cleans up: the job is killed unless its stream ended cleanly
// (`osmo run` got the exit status), and its record and control endpoint are removed.
int relay_to_end(Relay& relay, JobHost& host, const JobSpec& spec, bool recorded, Logger& log) {
  if (!spec.state_dir.empty() && host.job_pid() > 0)
    relay.open_control_endpoint_later(control_endpoint_path(spec.state_dir, spec.id));
  const Relay::Phase end = relay.run();
  int code = 0;
  switch (end) {
    case Relay::Phase::kDone: relay.linger(); break;
    case Relay::Phase::kAnchorGone:
      // `osmo run` was killed or its node vanished: nothing may be left running without an anchor.
      log.info("job={} lost its anchor; killing the job", spec.id);
      code = 1;
      break;
    case Relay::Phase::kRejected: log.info("job={} runs elsewhere; this copy ends", spec.id); break;
    case Relay::Phase::kDetached: break;
    default: code = 1;
  }
  host.kill();  // the whole PID namespace dies with its init (a no-op if it has exited)
  if (recorded) remove_job_record(spec.state_dir, spec.id);
  return code;
}

class Shepherd {
 public:
  Shepherd(UniqueFd stream, const JobSpec& spec, std::optional<PreparedJob> prepared)
      : spec_(spec), sock_(std::move(stream)), log_(spec.node, "shepherd"),
        prepared_(std::move(prepared)) {}

  int run();

 private:
  const JobSpec& spec_;
  UniqueFd sock_;
  Logger log_;
  std::optional<PreparedJob> prepared_;  // made ahead of time (warm), else in launch_job
};

int Shepherd::run() {
  // We may come from the daemon's launcher, which inherited the daemon's blocked signals.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  auto launched = launch_job(spec_, std::move(prepared_));
  NoJobHost no_job;
  JobHost& host = launched.ok() && launched->host ? static_cast<JobHost&>(*launched->host) : no_job;
  bool recorded = false;
  JobRecord record;
  if (launched.ok() && !launched->exec_failed_status) {
    // The record is written before `started` is sent: a job the caller has been told about is
    // always listed.
    record = make_record(spec_, host, launched->tty_index);
    if (!spec_.state_dir.empty()) {
      if (auto s = write_job_record(spec_.state_dir, record); !s.ok())
        log_.warn("job={} not listed by osmo ps: {}", spec_.id, s.error().str());
      else
        recorded = true;
    }
    log_.debug("job={} started pid={} cmd={}", spec_.id, record.job_pid, record.cmd);
  }
  Relay relay(std::move(sock_), launched.ok() ? std::move(launched->pipes) : JobPipes{}, &host, spec_.id, log_);
  relay.set_job_spec(spec_);
  if (!launched.ok()) {
    const std::string message = launched.error().str();
    log_.warn("job={} refused: {}", spec_.id, message);
    relay.queue_frame(FrameType::kRefused, nlohmann::json{{"message", message}}.dump());
  } else if (launched->exec_failed_status) {
    relay.queue_frame(FrameType::kNotice, launched->notice);
    relay.job_ended(*launched->exec_failed_status);
  } else {
    relay.queue_frame(FrameType::kStarted,
                      nlohmann::json{{"id", spec_.id}, {"node", spec_.node}, {"pid", record.job_pid}}.dump());
    relay.queue_frame(FrameType::kCredit, u32_payload(kStdinWindowBytes).view());
  }
  return relay_to_end(relay, host, spec_, recorded, log_);
}

}  // namespace

// PreparedJob: the job's pipes and an osmo init waiting for the spec (see shepherd.hpp).
Result<PreparedJob> PreparedJob::create() {
  int in_p[2], out_p[2], err_p[2], rep_p[2], ctl_p[2];
  if (::pipe2(in_p, O_CLOEXEC) != 0) return errno_error("cannot create the job's pipes");
  UniqueFd in_r(in_p[0]), in_w(in_p[1]);
  if (::pipe2(out_p, O_CLOEXEC) != 0) return errno_error("cannot create the job's pipes");
  UniqueFd out_r(out_p[0]), out_w(out_p[1]);
  if (::pipe2(err_p, O_CLOEXEC) != 0) return errno_error("cannot create the job's pipes");
  UniqueFd err_r(err_p[0]), err_w(err_p[1]);
  if (::pipe2(rep_p, O_CLOEXEC) != 0) return errno_error("cannot create the job's pipes");
  UniqueFd rep_r(rep_p[0]), rep_w(rep_p[1]);
  if (::pipe2(ctl_p, O_CLOEXEC) != 0) return errno_error("cannot create the job's pipes");
  UniqueFd ctl_r(ctl_p[0]), ctl_w(ctl_p[1]);
  for (int fd : {in_w.get(), out_r.get(), err_r.get()}) ::fcntl(fd, F_SETPIPE_SZ, kPipeBytes);

  InitFds init_fds{in_r.get(), out_w.get(), err_w.get(), rep_w.get(), ctl_r.get()};
  pid_t pid = -1;
  if (platform::jobs_need_user_namespace()) {
    // Without root: init is cloned (fork-like, on a copy of this stack) into a user namespace of
    // the daemon's own user, which owns the new PID namespace, so init may mount its /proc; the
    // job stays this unprivileged user on the node. No time namespace: it serves migration,
    // which needs root (docs/run.md, "Without root").
    init_fds.map_uid = static_cast<int>(::geteuid());
    init_fds.map_gid = static_cast<int>(::getegid());
    pid = static_cast<pid_t>(::syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, 0));
    if (pid < 0) return errno_error("cannot create the job's user and PID namespaces (this daemon runs without root)");
    if (pid == 0) job_init_main(init_fds);
  } else {
    // Only the children we fork from here on enter the new PID and time namespaces; the shepherd
    // stays in the node's, where it can see and kill the whole job. (The kernel allows this once
    // per process: a shepherd prepares exactly one job.)
    UniqueFd own_pid_ns(::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
    UniqueFd own_time_ns(::open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC));
    if (::unshare(CLONE_NEWPID | CLONE_NEWTIME) != 0)
      return errno_error("cannot create the job's PID and time namespaces");
    pid = ::fork();
    if (pid < 0) return errno_error("cannot fork osmo init");
    if (pid == 0) job_init_main(init_fds);
    // Init was the one child meant for those namespaces. Back to ours for any later child: while
    // the namespaces for children differ from our own, the kernel refuses to create threads
    // (clone(CLONE_THREAD) fails with EINVAL), and the migration code runs in threads of the
    // shepherd. Best effort: a failure only costs those threads.
    if (own_pid_ns.valid()) (void)::setns(own_pid_ns.get(), CLONE_NEWPID);
    if (own_time_ns.valid()) (void)::setns(own_time_ns.get(), CLONE_NEWTIME);
  }

  PreparedJob p;
  p.init_pid = pid;  // from here on the destructor kills init on failure
  p.job_in = std::move(in_w);
  p.job_out = std::move(out_r);
  p.job_err = std::move(err_r);
  p.report = std::move(rep_r);
  p.control = std::move(ctl_w);
  for (UniqueFd* child_end : {&in_r, &out_w, &err_w, &rep_w, &ctl_r}) child_end->reset();

  InitReport r{};
  const std::size_t n = read_full(p.report.get(), &r, sizeof r).bytes;  // less: init died
  if (n == sizeof r && r.kind == InitReportKind::kReady) return p;
  if (n == sizeof r && r.kind == InitReportKind::kSetupFailed)
    return Error{r.b, fmt::format("cannot {}", to_string(static_cast<JobSetupStage>(r.a)))};
  int st = 0;
  ::waitpid(std::exchange(p.init_pid, -1), &st, 0);
  return make_error("osmo init died while setting up the job's namespaces (wait status {:#x})", st);
}

PreparedJob::~PreparedJob() {
  if (init_pid > 0) {
    ::kill(init_pid, SIGKILL);  // its namespaces go with it
    ::waitpid(init_pid, nullptr, 0);
  }
}

PreparedJob& PreparedJob::operator=(PreparedJob&& o) noexcept {
  if (this != &o) {
    this->~PreparedJob();
    job_in = std::move(o.job_in);
    job_out = std::move(o.job_out);
    job_err = std::move(o.job_err);
    report = std::move(o.report);
    control = std::move(o.control);
    init_pid = std::exchange(o.init_pid, -1);
  }
  return *this;
}

PreparedJob::PreparedJob(PreparedJob&& o) noexcept { *this = std::move(o); }

Result<LaunchedJob> launch_job(const JobSpec& spec, std::optional<PreparedJob> prepared) {
  if (spec.uid != 0 && ::getpwuid(spec.uid) == nullptr)
    return make_error("node {} has no user with uid {}", spec.node, spec.uid);
  if (platform::jobs_need_user_namespace() && spec.uid != ::geteuid())
    return make_error("node {} runs its daemon without root (as uid {}): it can run only that user's jobs, not uid {}'s",
                      spec.node, ::geteuid(), spec.uid);
  if (!prepared) {
    auto p = PreparedJob::create();
    if (!p.ok()) return Error{p.error().code, fmt::format("node {}: {}", spec.node, p.error().message)};
    prepared.emplace(std::move(p).value());
  }
  // From here on we own init and the pipes: a failure kills init (and its namespaces).
  PreparedJob& pj = *prepared;
  LaunchedJob job;
  job.pipes.in = std::move(pj.job_in);
  job.pipes.out = std::move(pj.job_out);
  job.pipes.err = std::move(pj.job_err);
  UniqueFd report = std::move(pj.report);
  UniqueFd control = std::move(pj.control);
  pid_t init_pid = std::exchange(pj.init_pid, -1);
  prepared.reset();
  ScopeGuard kill_init([&init_pid] {
    if (init_pid > 0) {
      ::kill(init_pid, SIGKILL);
      ::waitpid(init_pid, nullptr, 0);
    }
  });

  if (spec.tty) {
    auto pty = open_job_pty(*spec.tty, spec.uid);
    if (!pty.ok()) return Error{pty.error().code, fmt::format("node {}: {}", spec.node, pty.error().message)};
    job.tty_index = pty->index;
    job.pipes.tty = std::move(pty->master);
    job.pipes.tty_stdin = spec.tty->in;
    // The pipes the pty replaces: the job never gets their other ends.
    if (spec.tty->in) job.pipes.in.reset();
    if (spec.tty->out) job.pipes.out.reset();
    if (spec.tty->err) job.pipes.err.reset();
  }
  if (!spec.no_spread) {
    // The exec filter's bypass cookie (exec_filter.hpp): random, never 0 (0 means no filter).
    while (job.spread_cookie == 0)
      if (::getrandom(&job.spread_cookie, sizeof job.spread_cookie, 0) != sizeof job.spread_cookie) break;
  }
  auto block = encode_launch_block(spec, job.tty_index, job.spread_cookie);
  if (!block.ok()) return block.take_error();
  if (auto s = send_launch_block(control.get(), *block); !s.ok())
    return Error{s.error().code, fmt::format("node {}: {}", spec.node, s.error().message)};
  InitReport r{};
  if (read_full(report.get(), &r, sizeof r).bytes != sizeof r) {
    int st = 0;
    ::waitpid(init_pid, &st, 0);
    init_pid = -1;
    return make_error("node {}: osmo init died while setting up the job (wait status {:#x})",
                      spec.node, st);
  }
  switch (r.kind) {
    case InitReportKind::kStarted: break;
    case InitReportKind::kExecFailed:
      job.exec_failed_status = (r.b == ENOENT ? kExitNotFound : kExitNotExecutable) << 8;
      job.notice = exec_failure_line(spec.argv[0], r.b);
      job.host = std::make_unique<InitHost>(std::move(report), std::move(control),
                                            std::exchange(init_pid, -1), -1);
      return job;
    case InitReportKind::kSetupFailed: {
      const auto stage = static_cast<JobSetupStage>(r.a);
      std::string detail;
      if (stage == JobSetupStage::kChdir) detail = fmt::format(" {}", spec.cwd);
      if (stage == JobSetupStage::kUid) detail = fmt::format(" {}", spec.uid);
      if (stage == JobSetupStage::kGid) detail = fmt::format(" {}", spec.gid);
      errno = r.b;
      return errno_error("node {}: cannot {}{}", spec.node, to_string(stage), detail);
    }
    default:
      return make_error("node {}: unexpected report {} from osmo init", spec.node,
                        static_cast<int>(r.kind));
  }
  const pid_t job_pid = find_job_pid(init_pid);
  if (r.c >= 0 && job.spread_cookie != 0) {
    // Our own copy of init's listener, for the spread supervisor (init keeps its own: a
    // listener nobody holds would fail every exec of the job with ENOSYS).
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, init_pid, 0)));
    if (pidfd.valid()) job.spread_listener.reset(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), r.c, 0)));
    job.init_listener_fd = r.c;
    // The supervisor in the daemon decides each exec; while there is none, every exec stays.
    // Started here, so that every user of launch_job answers the job's execs.
    if (job.spread_listener.valid())
      spread::keep_supervised(spec.state_dir, spread::JobWatch{spec.id, job.spread_cookie, init_pid, r.c},
                              std::move(job.spread_listener));
  }
  {
    const InitSignalRequest ack{0, 0};  // init may reap from now on (see job_init.cpp)
    if (::write(control.get(), &ack, sizeof ack) != static_cast<ssize_t>(sizeof ack))
      return errno_error("node {}: osmo init is gone", spec.node);
  }
  job.host = std::make_unique<InitHost>(std::move(report), std::move(control),
                                        std::exchange(init_pid, -1), job_pid);
  return job;
}

int adopt_shepherd_main(const std::function<Result<UniqueFd>()>& dial_home, const JobSpec& spec,
                        AdoptedJob job, const HandoffState& state, std::function<Status()> on_attached) {
  Logger log(spec.node, "shepherd");
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  NoJobHost no_job;
  JobHost& host = job.host ? *job.host : no_job;
  auto stream = dial_home();
  if (!stream.ok()) {
    log.error("job={} cannot reach its home {} to attach: {}", spec.id, spec.home, stream.error().str());
    host.kill();
    return 1;
  }
  Relay relay(std::move(stream).value(), std::move(job.pipes), &host, spec.id, log);
  relay.set_job_spec(spec);
  bool recorded = false;
  // Listed as soon as the anchor has accepted us, before the job runs again.
  auto attached = [&]() -> Status {
    JobRecord record = make_record(spec, host, job.tty_index);
    record.migrations = job.migrations;
    if (job.started_unix_ms > 0) record.started_unix_ms = job.started_unix_ms;
    if (!spec.state_dir.empty()) {
      if (auto s = write_job_record(spec.state_dir, record); !s.ok())
        log.warn("job={} not listed by osmo ps: {}", spec.id, s.error().str());
      else
        recorded = true;
    }
    return on_attached ? on_attached() : ok_status();
  };
  relay.start_attach(state.epoch, spec.node, state, attached);
  return relay_to_end(relay, host, spec, recorded, log);
}

int shepherd_main(UniqueFd stream, const JobSpec& spec, std::optional<PreparedJob> prepared) {
  Shepherd s(std::move(stream), spec, std::move(prepared));
  return s.run();
}

namespace {

// Reads the JSON spec from a memfd and runs the job (or refuses it on the stream).
int run_from_spec_fd(UniqueFd stream, int spec_fd, std::optional<PreparedJob> prepared) {
  std::string text;
  {
    UniqueFd spec_file(spec_fd);
    (void)read_to_end(spec_file.get(), &text);  // a read error leaves a partial spec, refused as not JSON
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto spec = j.is_discarded() ? Result<JobSpec>(make_error("job spec is not JSON"))
                               : job_spec_from_json(j);
  if (!spec.ok()) {
    std::vector<char> f;
    append_frame(f, FrameType::kRefused,
                 nlohmann::json{{"message", spec.error().message}}.dump());
    (void)write_all(stream.get(), std::string_view(f.data(), f.size()));
    return 1;
  }
  return shepherd_main(std::move(stream), *spec, std::move(prepared));
}

}  // namespace

int shepherd_entry(int stream_fd, int spec_fd) {
  return run_from_spec_fd(UniqueFd(stream_fd), spec_fd, std::nullopt);
}

namespace {

// Runs, once and on a made-up job, the code a job start goes through in the shepherd: decoding
// the spec, the user lookup, the launch block, the /proc reads, the frames. A forked process
// page-faults on every code page, PLT entry and heap page it touches for the first time (~80 on
// this path, ~12 us each on this VM); a warm shepherd takes them here, before it is needed.
// Touches nothing outside this process.
void rehearse_job_start() {
  JobSpec s;
  s.id = "000000000000";
  s.home = s.node = "rehearsal";
  s.argv = {"true", "--rehearsal"};
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) s.env.emplace_back(*e);
  s.cwd = "/";
  for (int r = 0; r < RLIM_NLIMITS; ++r) s.rlimits.push_back(Rlimit{r, RLIM_INFINITY, RLIM_INFINITY});
  s.uid = s.gid = 0;
  s.groups = {0};
  auto j = nlohmann::json::parse(to_json(s).dump(), nullptr, false);
  auto spec = job_spec_from_json(j);
  if (spec.ok()) {
    (void)encode_launch_block(*spec);
    (void)command_line(spec->argv);
  }
  (void)::getpwuid(0);
  (void)platform::process_start_ticks(::getpid());
  (void)find_job_pid(::getpid());
  // The relay's start (its buffers are allocated per job, but its code pages are touched here).
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0) {
    ::close(sp[1]);
    NoJobHost host;
    Relay relay(UniqueFd(sp[0]), JobPipes{}, &host, s.id, Logger(s.node, "shepherd"));
    relay.queue_frame(FrameType::kStarted,
                      nlohmann::json{{"id", s.id}, {"node", s.node}, {"pid", 1}}.dump());
    relay.queue_frame(FrameType::kCredit, u32_payload(kStdinWindowBytes).view());
  }
  (void)unix_ms();
}

}  // namespace

int warm_shepherd_main(int sock) {
  auto prepared = PreparedJob::create();
  if (!prepared.ok()) return 1;  // the launcher starts the job the cold way, which reports why
  rehearse_job_start();
  const char ready = 'R';
  if (::send(sock, &ready, 1, MSG_NOSIGNAL) != 1) return 0;
  int fds[2] = {-1, -1};
  if (!recv_job_request(sock, fds)) return 0;  // unused: the prepared init dies with us
  // From now on we run a job, which must outlive the daemon and its launcher.
  ::prctl(PR_SET_PDEATHSIG, 0);
  ::close(sock);
  if (fds[0] < 0 || fds[1] < 0) {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
    return 1;
  }
  return run_from_spec_fd(UniqueFd(fds[0]), fds[1], std::move(prepared).value());
}

bool recv_job_request(int sock, int fds[2]) {
  char byte = 0;
  platform::ReceivedFds got;
  if (platform::recv_with_fds(sock, &byte, 1, &got) <= 0) return false;
  fds[0] = fds[1] = -1;
  if (got.count == 2) {  // anything else is not a job request: what came is closed with `got`
    fds[0] = got.take(0).release();
    fds[1] = got.take(1).release();
  }
  return true;
}

Status send_job_request(int sock, int stream_fd, int spec_fd) {
  const int fds[2] = {stream_fd, spec_fd};
  const char byte = 'J';
  if (platform::send_with_fds(sock, &byte, 1, fds) != 1) return errno_error("sending a job to a shepherd");
  return ok_status();
}

Status spawn_shepherd(const std::string& exe, int stream_fd, const JobSpec& spec) {
  UniqueFd memfd(::memfd_create("osmo-job-spec", MFD_CLOEXEC));
  if (!memfd.valid()) return errno_error("memfd_create for job {}", spec.id);
  OSMO_TRY(write_all(memfd.get(), to_json(spec).dump()));
  if (::lseek(memfd.get(), 0, SEEK_SET) != 0) return errno_error("lseek on job {} spec", spec.id);

  // Everything the children need is prepared before fork: after it, in a multi-threaded parent,
  // only async-signal-safe calls are allowed (no allocation: another thread may hold malloc's lock).
  const char* argv[] = {"osmo", "__job-shepherd", "3", "4", nullptr};
  const int spec_fd = memfd.get();
  const pid_t mid = ::fork();
  if (mid < 0) return errno_error("fork for job {}", spec.id);
  if (mid == 0) {
    ::setsid();  // no controlling terminal, no session of the daemon's
    const pid_t g = ::fork();
    if (g != 0) ::_exit(g < 0 ? 1 : 0);
    // Move both fds out of the way of 3 and 4 before placing them there.
    const int s = ::fcntl(stream_fd, F_DUPFD, 64);
    const int m = ::fcntl(spec_fd, F_DUPFD, 64);
    if (s < 0 || m < 0 || ::dup2(s, 3) < 0 || ::dup2(m, 4) < 0) ::_exit(126);
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
    }
    close_fds_except({3, 4});
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(exe.c_str(), const_cast<char* const*>(argv), environ);
    ::_exit(127);
  }
  int st = 0;
  while (::waitpid(mid, &st, 0) < 0) {
    if (errno != EINTR) return errno_error("waitpid for job {} launcher {}", spec.id, mid);
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return make_error("cannot start the shepherd of job {} (launcher status {:#x})", spec.id, st);
  return ok_status();
}

}  // namespace osmo::run
