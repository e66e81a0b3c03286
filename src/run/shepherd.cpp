// SPDX-License-Identifier: GPL-2.0-or-later
// The job shepherd (see shepherd.hpp): start-up, the relay loop and the detached spawn.
#include "run/shepherd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <optional>
#include <cstring>

#include <fmt/format.h>

#include "base/log.hpp"
#include "base/scope_guard.hpp"
#include "run/byte_buffer.hpp"
#include "run/exit_status.hpp"
#include "run/fd_util.hpp"
#include "run/frame.hpp"
#include "run/job_init.hpp"
#include "run/job_table.hpp"

extern char** environ;

namespace osmo::run {

namespace {

// A quiet stream gets a heartbeat this often, so that the anchor can tell a silent job from a
// dead node (it gives up after kAnchorDeadAfterMs, see anchor.hpp).
constexpr std::int64_t kHeartbeatMs = 1000;
// stdin credit is returned in batches of at least this much (or when the buffer drains).
constexpr std::uint32_t kCreditBatchBytes = 64 * 1024;
// After the last frame, how long we wait for the anchor to close before closing ourselves.
// Closing with unread input would send a RST, which can destroy output still in flight.
constexpr int kLingerMs = 5000;
// The job's pipes: large, so that a fast writer and the relay exchange big chunks.
constexpr int kPipeBytes = 1 << 20;
// See Shepherd::tcp_.
constexpr int kNotSentLowatBytes = 256 * 1024;

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The pid (as this node sees it) of init's only child, the job.
pid_t find_job_pid(pid_t init_pid) {
  char path[64], buf[64];
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", static_cast<int>(init_pid),
                static_cast<int>(init_pid));
  const std::string_view text = read_small_file(path, buf, sizeof buf);
  pid_t pid = 0;
  std::from_chars(text.data(), text.data() + text.size(), pid);
  return pid;
}

std::string exec_failure_line(const std::string& prog, int err) {
  if (err == ENOENT && prog.find('/') == std::string::npos)
    return fmt::format("{}: command not found", prog);
  return fmt::format("{}: {}", prog, std::strerror(err));
}

class Shepherd {
 public:
  Shepherd(UniqueFd stream, const JobSpec& spec, std::optional<PreparedJob> prepared)
      : spec_(spec), sock_(std::move(stream)), log_(spec.node, "shepherd"),
        prepared_(std::move(prepared)) {}

  int run();

 private:
  void refuse(const std::string& message);
  Status start_job();
  void relay();
  void linger();
  bool handle_stream_input();   // false: the anchor is gone
  bool flush_stream();          // false: the anchor is gone
  void read_job_output(UniqueFd& fd, FrameType data, FrameType eof);
  bool start_spliced_frame(UniqueFd& fd, FrameType data);
  bool continue_splice();  // false: the anchor is gone
  void write_job_stdin();
  void read_report();
  void send_credit(std::uint32_t n, bool force);
  void close_job_stdin();

  const JobSpec& spec_;
  UniqueFd sock_;
  Logger log_;
  std::optional<PreparedJob> prepared_;  // made ahead of time (warm), else in start_job
  UniqueFd job_in_, job_out_, job_err_, report_, control_;
  pid_t init_pid_ = -1;
  JobRecord record_;
  bool recorded_ = false;

  ByteBuffer out_{4 << 20};   // frames to the anchor
  ByteBuffer in_{2 << 20};    // bytes from the anchor, not yet parsed
  ByteBuffer stdin_{kStdinWindowBytes};  // stdin for the job, not yet written to its pipe
  bool stdin_eof_ = false;    // the anchor's stdin ended: close the job's once drained
  bool stdin_gone_ = false;   // the job closed its stdin: discard what comes
  std::uint32_t credit_owed_ = 0;
  bool exit_known_ = false;
  int wait_status_ = 0;
  bool final_sent_ = false;   // kExit or kRefused queued: nothing follows
  bool anchor_gone_ = false;
  std::int64_t last_send_ms_ = 0;

  // A frame whose payload moves from a job pipe into the stream with splice(2). It is started
  // only when out_ is empty, and out_ is not flushed until it is complete, so frames queued
  // meanwhile follow it in order.
  // On TCP, job output is read only while the kernel holds less than kNotSentLowatBytes of
  // unsent data (TCP_NOTSENT_LOWAT makes POLLOUT mean exactly that): while the network is busy
  // the job's pipe fills, and the next frame is large instead of one per small write().
  bool tcp_ = false;
  UniqueFd* splice_fd_ = nullptr;
  std::size_t splice_left_ = 0;
  char splice_header_[kFrameHeaderBytes];
  std::size_t splice_header_left_ = 0;
  bool close_out_after_splice_ = false;
  bool close_err_after_splice_ = false;
};

void Shepherd::refuse(const std::string& message) {
  log_.warn("job={} refused: {}", spec_.id, message);
  {
    std::vector<char> f;
    append_frame(f, FrameType::kRefused, nlohmann::json{{"message", message}}.dump());
    out_.append(f.data(), f.size());
  }
  final_sent_ = true;
}

Status Shepherd::start_job() {
  if (spec_.uid != 0 && ::getpwuid(spec_.uid) == nullptr)
    return make_error("node {} has no user with uid {}", spec_.node, spec_.uid);
  if (!prepared_) {
    auto p = PreparedJob::create();
    if (!p.ok()) return Error{p.error().code, fmt::format("node {}: {}", spec_.node, p.error().message)};
    prepared_.emplace(std::move(p).value());
  }
  // From here on the shepherd owns init and the pipes (the cleanup in run() kills init).
  PreparedJob& pj = *prepared_;
  job_in_ = std::move(pj.job_in);
  job_out_ = std::move(pj.job_out);
  job_err_ = std::move(pj.job_err);
  report_ = std::move(pj.report);
  control_ = std::move(pj.control);
  init_pid_ = std::exchange(pj.init_pid, -1);
  prepared_.reset();

  auto block = encode_launch_block(spec_);
  if (!block.ok()) return block.take_error();
  if (auto s = send_launch_block(control_.get(), *block); !s.ok())
    return Error{s.error().code, fmt::format("node {}: {}", spec_.node, s.error().message)};
  InitReport r{};
  ssize_t n;
  do n = ::read(report_.get(), &r, sizeof r);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof r)) {
    int st = 0;
    ::waitpid(init_pid_, &st, 0);
    init_pid_ = -1;
    return make_error("node {}: osmo init died while setting up the job (wait status {:#x})",
                      spec_.node, st);
  }
  switch (r.kind) {
    case InitReportKind::kStarted: break;
    case InitReportKind::kExecFailed: {
      std::vector<char> f;
      append_frame(f, FrameType::kNotice, exec_failure_line(spec_.argv[0], r.b));
      out_.append(f.data(), f.size());
      exit_known_ = true;
      wait_status_ = (r.b == ENOENT ? kExitNotFound : kExitNotExecutable) << 8;
      return ok_status();
    }
    case InitReportKind::kSetupFailed: {
      const auto stage = static_cast<JobSetupStage>(r.a);
      std::string detail;
      if (stage == JobSetupStage::kChdir) detail = fmt::format(" {}", spec_.cwd);
      if (stage == JobSetupStage::kUid) detail = fmt::format(" {}", spec_.uid);
      if (stage == JobSetupStage::kGid) detail = fmt::format(" {}", spec_.gid);
      errno = r.b;
      return errno_error("node {}: cannot {}{}", spec_.node, to_string(stage), detail);
    }
    default:
      return make_error("node {}: unexpected report {} from osmo init", spec_.node,
                        static_cast<int>(r.kind));
  }

  record_.id = spec_.id;
  record_.home = spec_.home;
  record_.node = spec_.node;
  record_.uid = spec_.uid;
  record_.cmd = command_line(spec_.argv);
  record_.shepherd_pid = ::getpid();
  record_.shepherd_start = process_start_time(::getpid());
  record_.init_pid = init_pid_;
  record_.job_pid = find_job_pid(init_pid_);
  record_.job_start = process_start_time(record_.job_pid);
  {
    const InitSignalRequest ack{0, 0};  // init may reap from now on (see job_init.cpp)
    if (::write(control_.get(), &ack, sizeof ack) != static_cast<ssize_t>(sizeof ack))
      return errno_error("node {}: osmo init is gone", spec_.node);
  }
  record_.started_unix_ms = unix_ms();
  if (!spec_.state_dir.empty()) {
    if (auto s = write_job_record(spec_.state_dir, record_); !s.ok())
      log_.warn("job={} not listed by osmo ps: {}", spec_.id, s.error().str());
    else
      recorded_ = true;
  }
  std::vector<char> f;
  append_frame(f, FrameType::kStarted,
               nlohmann::json{{"id", spec_.id}, {"node", spec_.node}, {"pid", record_.job_pid}}.dump());
  append_u32_frame(f, FrameType::kCredit, kStdinWindowBytes);
  out_.append(f.data(), f.size());
  log_.debug("job={} started pid={} cmd={}", spec_.id, record_.job_pid, record_.cmd);
  return ok_status();
}

void Shepherd::send_credit(std::uint32_t n, bool force) {
  credit_owed_ += n;
  if (credit_owed_ == 0 || (!force && credit_owed_ < kCreditBatchBytes) || final_sent_) return;
  std::vector<char> f;
  append_u32_frame(f, FrameType::kCredit, credit_owed_);
  out_.append(f.data(), f.size());
  credit_owed_ = 0;
}

void Shepherd::close_job_stdin() {
  job_in_.reset();
  stdin_gone_ = true;
}

bool Shepherd::handle_stream_input() {
  for (;;) {
    char* t = in_.tail(256 * 1024);
    const ssize_t n = ::read(sock_.get(), t, 256 * 1024);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      log_.warn("job={} relay stream failed: {}", spec_.id, std::strerror(errno));
      return false;
    }
    if (n == 0) return false;
    in_.commit(static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < 256 * 1024) break;
  }
  while (in_.size() >= kFrameHeaderBytes) {
    auto h = decode_header(in_.data());
    if (!h.ok()) {
      log_.warn("job={} anchor sent garbage: {}", spec_.id, h.error().message);
      return false;
    }
    if (in_.size() < kFrameHeaderBytes + h->length) break;
    const char* p = in_.data() + kFrameHeaderBytes;
    switch (h->type) {
      case FrameType::kStdin:
        if (stdin_gone_)
          send_credit(h->length, true);
        else
          stdin_.append(p, h->length);
        break;
      case FrameType::kStdinEof: stdin_eof_ = true; break;
      case FrameType::kSignal:
        if (h->length == 8 && control_.valid()) {
          InitSignalRequest req{static_cast<std::int32_t>(read_u32(p)), read_u32(p + 4)};
          // Best effort: init gone means the job is gone too.
          (void)!::write(control_.get(), &req, sizeof req);
        }
        break;
      // A frame being spliced from the pipe must be completed before the pipe may close.
      case FrameType::kStdoutClosed:
        if (splice_fd_ == &job_out_) close_out_after_splice_ = true; else job_out_.reset();
        break;
      case FrameType::kStderrClosed:
        if (splice_fd_ == &job_err_) close_err_after_splice_ = true; else job_err_.reset();
        break;
      default:
        log_.warn("job={} anchor sent a {} frame, which only a shepherd sends", spec_.id,
                  frame_name(h->type));
        return false;
    }
    in_.consume(kFrameHeaderBytes + h->length);
  }
  if (stdin_eof_ && stdin_.empty() && job_in_.valid()) close_job_stdin();
  return true;
}

bool Shepherd::continue_splice() {
  while (splice_header_left_ > 0) {
    const ssize_t n = ::send(sock_.get(), splice_header_ + kFrameHeaderBytes - splice_header_left_,
                             splice_header_left_, MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN;
    }
    splice_header_left_ -= static_cast<std::size_t>(n);
  }
  while (splice_left_ > 0) {
    const ssize_t n = ::splice(splice_fd_->get(), nullptr, sock_.get(), nullptr, splice_left_,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      log_.warn("job={} relay stream failed: {}", spec_.id, std::strerror(errno));
      return false;
    }
    if (n == 0) {  // cannot happen: the bytes were in the pipe, and only we read it
      log_.error("job={} job pipe ran dry in a spliced frame", spec_.id);
      return false;
    }
    splice_left_ -= static_cast<std::size_t>(n);
    last_send_ms_ = now_ms();
  }
  splice_fd_ = nullptr;
  if (close_out_after_splice_) job_out_.reset();
  if (close_err_after_splice_) job_err_.reset();
  close_out_after_splice_ = close_err_after_splice_ = false;
  return true;
}

// Bulk output without copying through the shepherd: the bytes waiting in the pipe (FIONREAD;
// they stay there, we are the only reader) are announced in a header and spliced into the
// stream. Falls back to read_job_output() when the socket is full or the pipe holds little.
bool Shepherd::start_spliced_frame(UniqueFd& fd, FrameType data) {
  constexpr int kSpliceMinBytes = 64 * 1024;
  int avail = 0;
  if (!out_.empty() || splice_fd_ != nullptr || ::ioctl(fd.get(), FIONREAD, &avail) != 0 ||
      avail < kSpliceMinBytes)
    return false;
  const auto n = static_cast<std::uint32_t>(std::min<int>(avail, kMaxFramePayload));
  encode_header(splice_header_, data, n);
  const ssize_t sent = ::send(sock_.get(), splice_header_, kFrameHeaderBytes,
                              MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE);
  if (sent <= 0) return false;  // full (or broken: the next flush says so)
  splice_header_left_ = kFrameHeaderBytes - static_cast<std::size_t>(sent);
  splice_fd_ = &fd;
  splice_left_ = n;
  return true;
}

bool Shepherd::flush_stream() {
  if (splice_fd_ != nullptr) {
    if (!continue_splice()) return false;
    if (splice_fd_ != nullptr) return true;
  }
  while (!out_.empty()) {
    const ssize_t n = ::send(sock_.get(), out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      log_.warn("job={} relay stream failed: {}", spec_.id, std::strerror(errno));
      return false;
    }
    out_.consume(static_cast<std::size_t>(n));
    last_send_ms_ = now_ms();
  }
  return true;
}

void Shepherd::read_job_output(UniqueFd& fd, FrameType data, FrameType eof) {
  char* t = out_.tail(kFrameHeaderBytes + kMaxFramePayload);
  const ssize_t n = ::read(fd.get(), t + kFrameHeaderBytes, kMaxFramePayload);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    fd.reset();
    encode_header(t, eof, 0);
    out_.commit(kFrameHeaderBytes);
    return;
  }
  encode_header(t, data, static_cast<std::uint32_t>(n));
  out_.commit(kFrameHeaderBytes + static_cast<std::size_t>(n));
}

void Shepherd::write_job_stdin() {
  const ssize_t n = ::write(job_in_.get(), stdin_.data(), stdin_.size());
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
    // EPIPE: the job closed its stdin. Drop what is buffered and what comes, like a pipe would.
    send_credit(static_cast<std::uint32_t>(stdin_.size()), true);
    stdin_.clear();
    close_job_stdin();
    return;
  }
  stdin_.consume(static_cast<std::size_t>(n));
  send_credit(static_cast<std::uint32_t>(n), stdin_.empty());
  if (stdin_eof_ && stdin_.empty()) close_job_stdin();
}

void Shepherd::read_report() {
  InitReport r{};
  const ssize_t n = ::read(report_.get(), &r, sizeof r);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n == static_cast<ssize_t>(sizeof r) && r.kind == InitReportKind::kExited) {
    exit_known_ = true;
    wait_status_ = r.a;
    return;
  }
  // EOF: init is gone. Without a report it was killed from outside (only SIGKILL can do that).
  report_.reset();
  if (!exit_known_) {
    int st = 0;
    if (init_pid_ > 0 && ::waitpid(init_pid_, &st, 0) == init_pid_) {
      init_pid_ = -1;
      wait_status_ = st;
    } else {
      wait_status_ = SIGKILL;
    }
    exit_known_ = true;
  }
}

void Shepherd::relay() {
  last_send_ms_ = now_ms();
  while (!(final_sent_ && out_.empty() && splice_fd_ == nullptr)) {
    if (exit_known_ && !job_out_.valid() && !job_err_.valid() && !final_sent_) {
      std::vector<char> f;
      if (WIFSIGNALED(wait_status_))
        append_u32_pair_frame(f, FrameType::kExit, kExitSignal, WTERMSIG(wait_status_));
      else
        append_u32_pair_frame(f, FrameType::kExit, kExitCode, WEXITSTATUS(wait_status_));
      out_.append(f.data(), f.size());
      final_sent_ = true;
      continue;
    }
    pollfd pfd[6];
    int n = 0;
    // Output is read only while there is room (TCP back-pressure reaches the job through its
    // pipes) and not after the last frame.
    int unsent = 0;
    const bool sock_busy = tcp_ && ::ioctl(sock_.get(), SIOCOUTQNSD, &unsent) == 0 &&
                           unsent >= kNotSentLowatBytes;
    const bool room = out_.size() < kMaxFramePayload && !final_sent_ && splice_fd_ == nullptr && !sock_busy;
    const bool pending = !out_.empty() || splice_fd_ != nullptr;
    pfd[n++] = {sock_.get(), static_cast<short>(POLLIN | (pending || sock_busy ? POLLOUT : 0)), 0};
    const int i_out = (job_out_.valid() && room) ? n : -1;
    if (i_out >= 0) pfd[n++] = {job_out_.get(), POLLIN, 0};
    const int i_err = (job_err_.valid() && room) ? n : -1;
    if (i_err >= 0) pfd[n++] = {job_err_.get(), POLLIN, 0};
    const int i_in = (job_in_.valid() && !stdin_.empty()) ? n : -1;
    if (i_in >= 0) pfd[n++] = {job_in_.get(), POLLOUT, 0};
    const int i_rep = report_.valid() ? n : -1;
    if (i_rep >= 0) pfd[n++] = {report_.get(), POLLIN, 0};
    const std::int64_t wait = std::max<std::int64_t>(0, last_send_ms_ + kHeartbeatMs - now_ms());
    if (::poll(pfd, static_cast<nfds_t>(n), static_cast<int>(wait)) < 0 && errno != EINTR) {
      log_.error("job={} poll failed: {}", spec_.id, std::strerror(errno));
      anchor_gone_ = true;
      return;
    }
    if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !handle_stream_input()) {
      anchor_gone_ = true;
      return;
    }
    if (i_out >= 0 && pfd[i_out].revents != 0 && !start_spliced_frame(job_out_, FrameType::kStdout))
      read_job_output(job_out_, FrameType::kStdout, FrameType::kStdoutEof);
    if (i_err >= 0 && pfd[i_err].revents != 0 && splice_fd_ == nullptr &&
        !start_spliced_frame(job_err_, FrameType::kStderr))
      read_job_output(job_err_, FrameType::kStderr, FrameType::kStderrEof);
    if (i_in >= 0 && pfd[i_in].revents != 0 && job_in_.valid()) write_job_stdin();
    if (i_rep >= 0 && pfd[i_rep].revents != 0) read_report();
    if (out_.empty() && splice_fd_ == nullptr && now_ms() - last_send_ms_ >= kHeartbeatMs && !final_sent_) {
      std::vector<char> f;
      append_frame(f, FrameType::kHeartbeat);
      out_.append(f.data(), f.size());
    }
    if (!flush_stream()) {
      anchor_gone_ = true;
      return;
    }
  }
}

void Shepherd::linger() {
  ::shutdown(sock_.get(), SHUT_WR);
  const std::int64_t deadline = now_ms() + kLingerMs;
  char buf[4096];
  for (;;) {
    const std::int64_t left = deadline - now_ms();
    if (left <= 0) return;
    pollfd p{sock_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return;
    const ssize_t n = ::read(sock_.get(), buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
  }
}

int Shepherd::run() {
  // We may come from the daemon's launcher, which inherited the daemon's blocked signals.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  set_stream_liveness(sock_.get());
  tcp_ = ::setsockopt(sock_.get(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &kNotSentLowatBytes,
                      sizeof kNotSentLowatBytes) == 0;
  if (auto s = set_nonblocking(sock_.get(), true); !s.ok()) {
    log_.error("job={} {}", spec_.id, s.error().str());
    return 1;
  }
  ScopeGuard cleanup([this] {
    if (init_pid_ > 0) {
      ::kill(init_pid_, SIGKILL);  // the whole PID namespace dies with its init
      ::waitpid(init_pid_, nullptr, 0);
    }
    if (recorded_) remove_job_record(spec_.state_dir, spec_.id);
  });
  if (auto s = start_job(); !s.ok()) refuse(s.take_error().str());
  for (int fd : {job_in_.get(), job_out_.get(), job_err_.get(), control_.get()})
    if (fd >= 0) (void)set_nonblocking(fd, true);
  relay();
  if (anchor_gone_) {
    // `osmo run` was killed or its node vanished: nothing may be left running without an anchor.
    if (!final_sent_) log_.info("job={} lost its anchor; killing the job", spec_.id);
    return final_sent_ ? 0 : 1;
  }
  linger();
  return 0;
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

  // Only the children we fork from here on enter the new PID and time namespaces; the shepherd
  // stays in the node's, where it can see and kill the whole job. (The kernel allows this once
  // per process: a shepherd prepares exactly one job.)
  if (::unshare(CLONE_NEWPID | CLONE_NEWTIME) != 0)
    return errno_error("cannot create the job's PID and time namespaces");
  const pid_t pid = ::fork();
  if (pid < 0) return errno_error("cannot fork osmo init");
  if (pid == 0) job_init_main(InitFds{in_r.get(), out_w.get(), err_w.get(), rep_w.get(), ctl_r.get()});

  PreparedJob p;
  p.init_pid = pid;  // from here on the destructor kills init on failure
  p.job_in = std::move(in_w);
  p.job_out = std::move(out_r);
  p.job_err = std::move(err_r);
  p.report = std::move(rep_r);
  p.control = std::move(ctl_w);
  for (UniqueFd* child_end : {&in_r, &out_w, &err_w, &rep_w, &ctl_r}) child_end->reset();

  InitReport r{};
  ssize_t n;
  do n = ::read(p.report.get(), &r, sizeof r);
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof r) && r.kind == InitReportKind::kReady) return p;
  if (n == static_cast<ssize_t>(sizeof r) && r.kind == InitReportKind::kSetupFailed)
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
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(spec_file.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
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
  (void)process_start_time(::getpid());
  (void)find_job_pid(::getpid());
  std::vector<char> f;
  append_frame(f, FrameType::kStarted,
               nlohmann::json{{"id", s.id}, {"node", s.node}, {"pid", 1}}.dump());
  append_u32_frame(f, FrameType::kCredit, kStdinWindowBytes);
  (void)unix_ms();
  (void)now_ms();
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
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  fds[0] = fds[1] = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(2 * sizeof(int)))
      std::memcpy(fds, CMSG_DATA(c), 2 * sizeof(int));
  }
  return true;
}

Status send_job_request(int sock, int stream_fd, int spec_fd) {
  const int fds[2] = {stream_fd, spec_fd};
  char byte = 'J';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  std::memcpy(CMSG_DATA(c), fds, sizeof fds);
  if (::sendmsg(sock, &msg, MSG_NOSIGNAL) != 1) return errno_error("sending a job to a shepherd");
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
