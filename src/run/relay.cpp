// SPDX-License-Identifier: GPL-2.0-or-later
// The shepherd's relay loop (see relay.hpp).
//
// A move, as the source shepherd sees it (the anchor's side and its races: anchor.cpp):
//
//   migration code            relay (source)                         anchor
//   freeze the job
//   begin_handoff() ───────►  queue `migrating`  ─────────────────►  holds stdin, signals
//                             read the pipes empty: stdout/stderr ─►  (written out)
//                             queue `handoff` {offsets} ──────────►  checks offsets
//                             kHandedOff                   ◄───────  `handoff-ack` {stdin, signals, epoch}
//                             copy stdin (pipe + buffer), kParked
//   ◄──────── HandoffState
//   (image to the target; the target attaches with `epoch`, see Relay::start_attach)
//   finish_handoff() ─────►  kDetached: the stream closes quietly; the shepherd kills this copy
//   or cancel_handoff() ──►  queue `resume`, kResuming         ◄───  `resumed` | `rejected`
//   ◄──────── true: thaw      kRunning: held signals delivered, fresh credit granted
//   ◄──────── false           kRejected: this copy dies
#include "run/relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "platform/linux/socket.hpp"
#include "run/exit_status.hpp"
#include "run/fd_util.hpp"
#include "run/job_pty.hpp"

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
// See Relay::tcp_.
constexpr int kNotSentLowatBytes = 256 * 1024;
// A job pipe holding at least this much is spliced into the stream rather than read.
constexpr int kSpliceMinBytes = 64 * 1024;
// Bytes read from the stream per read().
constexpr std::size_t kStreamReadBytes = 256 * 1024;
// A frozen copy whose fate the anchor has settled (superseded) or can no longer hear about (stream
// lost) waits this long for the migration code's finish or cancel, then dies. Long: a post-copy
// target may fault pages from it for a while; the migration code normally settles in seconds.
constexpr std::int64_t kAbandonedMoveMs = 10 * 60 * 1000;

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

MigrationHandler& migration_handler() {
  static MigrationHandler handler;
  return handler;
}

}  // namespace

void set_migration_handler(MigrationHandler handler) { migration_handler() = std::move(handler); }

std::string control_endpoint_path(const std::string& state_dir, const std::string& id) {
  return state_dir + "/jobs/" + id + ".sock";
}

const char* to_string(Relay::Phase phase) {
  switch (phase) {
    case Relay::Phase::kRunning: return "running";
    case Relay::Phase::kDraining: return "draining";
    case Relay::Phase::kFinal: return "final";
    case Relay::Phase::kDone: return "done";
    case Relay::Phase::kAnchorGone: return "anchor-gone";
    case Relay::Phase::kAttaching: return "attaching";
    case Relay::Phase::kHandingOff: return "handing-off";
    case Relay::Phase::kHandedOff: return "handed-off";
    case Relay::Phase::kParked: return "parked";
    case Relay::Phase::kResuming: return "resuming";
    case Relay::Phase::kSuperseded: return "superseded";
    case Relay::Phase::kStreamLost: return "stream-lost";
    case Relay::Phase::kRejected: return "rejected";
    case Relay::Phase::kDetached: return "detached";
  }
  return "?";
}

// ---- the migration code's handle -------------------------------------------------------------

struct Relay::Command {
  enum class Kind { kBegin, kCancel, kFinish };
  explicit Command(Kind k) : kind(k) {}
  Kind kind;
  // Set on the relay's thread under Control::mu_.
  bool done = false;
  Status status;
  HandoffState state;    // kBegin's result
  bool resumed = false;  // kCancel's result
};

class Relay::Control final : public MigrationControl {
 public:
  explicit Control(Relay* relay)
      : relay_(relay), loop_thread_(std::this_thread::get_id()),
        wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  Result<HandoffState> begin_handoff(int timeout_ms) override {
    OSMO_ASSIGN_OR_RETURN(auto cmd, run(Command::Kind::kBegin, timeout_ms));
    return cmd->state;
  }
  Result<bool> cancel_handoff(int timeout_ms) override {
    OSMO_ASSIGN_OR_RETURN(auto cmd, run(Command::Kind::kCancel, timeout_ms));
    return cmd->resumed;
  }
  Status finish_handoff() override {
    OSMO_ASSIGN_OR_RETURN(auto cmd, run(Command::Kind::kFinish, 5000));
    (void)cmd;
    return ok_status();
  }
  const JobSpec& spec() const override { return spec_; }
  pid_t job_pid() const override { return job_pid_; }
  // Set once, before the control endpoint opens (so before any migration thread can ask).
  void set_job(const JobSpec& spec, pid_t job_pid) {
    spec_ = spec;
    job_pid_ = job_pid;
  }

  // Relay side (its thread).
  int wake_fd() const { return wake_.get(); }
  std::shared_ptr<Command> take() {
    std::uint64_t v;
    (void)!::read(wake_.get(), &v, sizeof v);
    std::lock_guard lk(mu_);
    return std::exchange(queued_, nullptr);
  }
  void complete(const std::shared_ptr<Command>& cmd, Status status) {
    {
      std::lock_guard lk(mu_);
      if (cmd->done) return;
      cmd->status = std::move(status);
      cmd->done = true;
    }
    cv_.notify_all();
  }
  // The relay has ended in `phase`: later calls are answered from it.
  void detach(Phase phase) {
    std::shared_ptr<Command> queued;
    {
      std::lock_guard lk(mu_);
      relay_ = nullptr;
      ended_in_ = phase;
      queued = std::exchange(queued_, nullptr);
    }
    if (queued) answer_after_end(queued);
    cv_.notify_all();
  }

 private:
  Result<std::shared_ptr<Command>> run(Command::Kind kind, int timeout_ms) {
    auto cmd = std::make_shared<Command>(kind);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    if (std::this_thread::get_id() == loop_thread_) {
      Relay* r = nullptr;
      {
        std::lock_guard lk(mu_);
        r = relay_;
      }
      if (r == nullptr) {
        answer_after_end(cmd);
      } else {
        r->start_command(cmd);
        r->run_nested_until(cmd, now_ms() + timeout_ms);
      }
    } else {
      std::unique_lock lk(mu_);
      if (relay_ == nullptr) {
        lk.unlock();
        answer_after_end(cmd);
        lk.lock();
      } else {
        if (queued_) return make_error("another migration step is waiting for the relay");
        queued_ = cmd;
        const std::uint64_t one = 1;
        (void)!::write(wake_.get(), &one, sizeof one);
      }
      cv_.wait_until(lk, deadline, [&] { return cmd->done; });
    }
    std::lock_guard lk(mu_);
    if (!cmd->done) return make_error("the relay did not complete the step within {} ms", timeout_ms);
    if (!cmd->status.ok()) return cmd->status.error();
    return cmd;
  }

  // After the relay ended: a copy that was rejected or detached answers as such, any other end is
  // an error (the stream is gone: nothing can be resumed).
  void answer_after_end(const std::shared_ptr<Command>& cmd) {
    Phase ended;
    {
      std::lock_guard lk(mu_);
      ended = ended_in_;
    }
    Status st = ok_status();
    if (cmd->kind == Command::Kind::kCancel &&
        (ended == Phase::kRejected || ended == Phase::kAnchorGone || ended == Phase::kDetached))
      cmd->resumed = false;  // this copy is not the job any more
    else if (cmd->kind == Command::Kind::kFinish && (ended == Phase::kRejected || ended == Phase::kDetached))
      ;
    else
      st = make_error("the job's relay has ended ({})", to_string(ended));
    complete(cmd, std::move(st));
  }

  std::mutex mu_;
  std::condition_variable cv_;
  Relay* relay_;
  JobSpec spec_;
  pid_t job_pid_ = -1;
  Phase ended_in_ = Phase::kRunning;
  std::shared_ptr<Command> queued_;
  const std::thread::id loop_thread_;
  UniqueFd wake_;
};

// ---- set-up ------------------------------------------------------------------------------------

Relay::Relay(UniqueFd stream, JobPipes pipes, JobHost* host, std::string job_id, Logger log)
    : sock_(std::move(stream)), host_(host), id_(std::move(job_id)), log_(std::move(log)),
      job_in_(std::move(pipes.in)),
      out_pipe_{std::move(pipes.out), FrameType::kStdout, FrameType::kStdoutEof},
      err_pipe_{std::move(pipes.err), FrameType::kStderr, FrameType::kStderrEof},
      tty_pipe_{std::move(pipes.tty), FrameType::kTty, kNoFrame},
      control_(std::make_shared<Control>(this)) {
  tty_pipe_.is_tty = true;
  if (tty_pipe_.fd.valid()) {
    tty_ctl_.reset(::fcntl(tty_pipe_.fd.get(), F_DUPFD_CLOEXEC, 3));
    if (pipes.tty_stdin) {
      // stdin frames go into the pty; the stdin pipe (the job does not have it) is dropped.
      job_in_.reset(::fcntl(tty_pipe_.fd.get(), F_DUPFD_CLOEXEC, 3));
      stdin_tty_ = job_in_.valid();
    }
  }
  set_stream_liveness(sock_.get());
  tcp_ = ::setsockopt(sock_.get(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &kNotSentLowatBytes,
                      sizeof kNotSentLowatBytes) == 0;
  if (auto s = set_nonblocking(sock_.get(), true); !s.ok())
    log_.warn("job={} {}", id_, s.error().str());
  for (int fd : {job_in_.get(), out_pipe_.fd.get(), err_pipe_.fd.get(), tty_pipe_.fd.get()})
    if (fd >= 0) (void)set_nonblocking(fd, true);
}

Relay::~Relay() {
  control_->detach(phase_);
  if (!listen_path_.empty()) ::unlink(listen_path_.c_str());
}

Status Relay::open_control_endpoint(const std::string& path) {
  sockaddr_un addr;
  if (!platform::make_unix_address(path, &addr)) return make_error("control endpoint path too long: {}", path);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return errno_error("socket for {}", path);
  ::unlink(path.c_str());  // a stale one from a shepherd of the same id that died
  // Only root (the daemon, the migration code) may drive a move: the socket is created 0600.
  const mode_t old = ::umask(0177);
  const int b = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (b != 0) return errno_error("bind {}", path);
  if (::listen(fd.get(), 4) != 0) return errno_error("listen on {}", path);
  listen_fd_ = std::move(fd);
  listen_path_ = path;
  return ok_status();
}

JobPipes Relay::take_pipes() {
  return JobPipes{std::move(job_in_), std::move(out_pipe_.fd), std::move(err_pipe_.fd), std::move(tty_pipe_.fd),
                  stdin_tty_};
}

void Relay::start_attach(std::uint32_t epoch, const std::string& node, const HandoffState& state,
                         std::function<Status()> on_attached) {
  at_ = state.at;
  on_attached_ = std::move(on_attached);
  held_signals_ = state.held_signals;
  stdin_.clear();
  const std::string pre = state.unconsumed_stdin();
  stdin_.append(pre.data(), pre.size());
  if (state.stdin_ended) stdin_state_ = StdinState::kEofPending;
  if (state.wait_status) wait_status_ = state.wait_status;
  phase_ = Phase::kAttaching;
  queue_frame(FrameType::kAttach, encode(AttachMsg{id_, epoch, node, at_}));
}

// ---- the one way out ---------------------------------------------------------------------------

bool Relay::frame_allowed(FrameType type) const {
  switch (phase_) {
    case Phase::kRunning:
    case Phase::kDraining:
      return type != FrameType::kHandoff && type != FrameType::kResume && type != FrameType::kAttach;
    case Phase::kAttaching: return type == FrameType::kAttach;
    case Phase::kHandingOff:
      return type == FrameType::kStdout || type == FrameType::kStderr || type == FrameType::kTty ||
             type == FrameType::kStdoutEof ||
             type == FrameType::kStderrEof || type == FrameType::kHeartbeat || type == FrameType::kHandoff ||
             type == FrameType::kResume;
    case Phase::kHandedOff:
    case Phase::kParked: return type == FrameType::kHeartbeat || type == FrameType::kResume;
    case Phase::kResuming: return type == FrameType::kHeartbeat;
    default: return false;  // after the last frame, or without a stream
  }
}

void Relay::queue_frame(FrameType type, Payload payload) {
  if (!frame_allowed(type)) {
    log_.error("job={} {} frame not allowed while {}, not sent", id_, frame_name(type), to_string(phase_));
    return;
  }
  if (payload.pipe != nullptr) {
    if (!try_start_splice(*payload.pipe)) read_output_in_place(*payload.pipe);
    return;
  }
  const std::size_t n = kFrameHeaderBytes + payload.bytes.size();
  char* t = out_.tail(n);
  encode_header(t, type, static_cast<std::uint32_t>(payload.bytes.size()));
  if (!payload.bytes.empty()) std::memcpy(t + kFrameHeaderBytes, payload.bytes.data(), payload.bytes.size());
  out_.commit(n);
  if (type == FrameType::kExit || type == FrameType::kRefused) phase_ = Phase::kFinal;
}

// Bulk output without copying through the shepherd: the bytes waiting in the pipe (FIONREAD;
// they stay there, we are the only reader) are announced in a header and spliced into the
// stream. Declines when frames are queued, a splice runs, the pipe holds little or the socket is
// full.
bool Relay::try_start_splice(OutputPipe& p) {
  int avail = 0;
  if (p.is_tty || !out_.empty() || splice_from_ != nullptr || ::ioctl(p.fd.get(), FIONREAD, &avail) != 0 ||
      avail < kSpliceMinBytes)
    return false;
  const auto n = static_cast<std::uint32_t>(std::min<int>(avail, kMaxFramePayload));
  encode_header(splice_header_, p.data, n);
  const ssize_t sent = ::send(sock_.get(), splice_header_, kFrameHeaderBytes,
                              MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE);
  if (sent <= 0) return false;  // full (or broken: the next flush says so)
  splice_header_left_ = kFrameHeaderBytes - static_cast<std::size_t>(sent);
  splice_from_ = &p;
  splice_left_ = n;
  (p.data == FrameType::kStdout ? at_.stdout_bytes : at_.stderr_bytes) += n;
  return true;
}

// The payload is read straight into the outgoing queue, behind a header written afterwards.
void Relay::read_output_in_place(OutputPipe& p) {
  char* t = out_.tail(kFrameHeaderBytes + kMaxFramePayload);
  const ssize_t n = ::read(p.fd.get(), t + kFrameHeaderBytes, kMaxFramePayload);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    // A pty master reads EIO once the job's last process has closed the slave: its end of file.
    p.fd.reset();
    if (p.eof != kNoFrame) {
      encode_header(t, p.eof, 0);
      out_.commit(kFrameHeaderBytes);
    }
    return;
  }
  encode_header(t, p.data, static_cast<std::uint32_t>(n));
  out_.commit(kFrameHeaderBytes + static_cast<std::size_t>(n));
  if (p.data == FrameType::kStdout) at_.stdout_bytes += static_cast<std::uint64_t>(n);
  if (p.data == FrameType::kStderr) at_.stderr_bytes += static_cast<std::uint64_t>(n);
}

// ---- the job's side ----------------------------------------------------------------------------

void Relay::job_ended(int wait_status) {
  wait_status_ = wait_status;
  if (phase_ == Phase::kRunning) phase_ = Phase::kDraining;
}

void Relay::send_credit(std::uint32_t n, bool force) {
  if (phase_ != Phase::kRunning && phase_ != Phase::kDraining) return;  // a fresh grant follows a move
  const std::uint64_t paid = std::min<std::uint64_t>(credit_debt_, n);
  credit_debt_ -= paid;
  credit_owed_ += n - static_cast<std::uint32_t>(paid);
  if (credit_owed_ == 0 || (!force && credit_owed_ < kCreditBatchBytes)) return;
  queue_frame(FrameType::kCredit, u32_payload(credit_owed_).view());
  credit_owed_ = 0;
}

// After a move (resumed or attached) the anchor starts from zero credit: we grant the window less
// what we already hold. Bytes the anchor sent under its old credit are all here by now (they came
// before `handoff-ack`), so it can never exceed the window.
void Relay::grant_fresh_credit() {
  credit_owed_ = 0;
  const std::uint64_t held = stdin_.size();
  credit_debt_ = held > kStdinWindowBytes ? held - kStdinWindowBytes : 0;
  if (held < kStdinWindowBytes)
    queue_frame(FrameType::kCredit, u32_payload(static_cast<std::uint32_t>(kStdinWindowBytes - held)).view());
}

void Relay::close_job_stdin() {
  job_in_.reset();
  stdin_state_ = StdinState::kClosed;
}

// A frame being spliced from the pipe must be completed before the pipe may close.
void Relay::close_output(OutputPipe& p) {
  if (splice_from_ == &p)
    p.close_after_splice = true;
  else
    p.fd.reset();
}

void Relay::write_job_stdin() {
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
  if (stdin_state_ == StdinState::kEofPending && stdin_.empty()) close_job_stdin();
}

void Relay::set_job_spec(const JobSpec& spec) { control_->set_job(spec, host_->job_pid()); }

void Relay::deliver_signal(int signo, bool group) {
  // A job with a pty: a terminal's signal goes to the terminal's foreground process group (a
  // shell's foreground job, not the shell), as the terminal itself would send it. The pgrp is
  // read through the master, so it comes in this node's pid numbering.
  pid_t fg = 0;
  if (group && tty_ctl_.valid() && ::ioctl(tty_ctl_.get(), TIOCGPGRP, &fg) == 0 && fg > 0 && ::kill(-fg, signo) == 0)
    return;
  host_->signal(signo, group);
}

void Relay::deliver_held_signals() {
  for (const auto& s : held_signals_) deliver_signal(s.signo, s.group);
  held_signals_.clear();
}

// The exit frame follows the job's last output: it is queued once the job has ended and both of
// its output pipes are closed.
void Relay::check_job_end() {
  if (phase_ != Phase::kDraining || out_pipe_.fd.valid() || err_pipe_.fd.valid() || tty_pipe_.fd.valid()) return;
  const int st = *wait_status_;
  const std::uint32_t kind = WIFSIGNALED(st) ? kExitSignal : kExitCode;
  const auto value = static_cast<std::uint32_t>(WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  queue_frame(FrameType::kExit, u32_pair_payload(kind, value).view());
}

// The frozen job's output is all in the stream (or queued for it) once no splice is unfinished
// and both pipes are empty: nobody writes to them while the job is frozen.
bool Relay::output_drained() const {
  if (splice_from_ != nullptr) return false;
  for (const OutputPipe* p : {&out_pipe_, &err_pipe_}) {
    int avail = 0;
    if (p->fd.valid() && ::ioctl(p->fd.get(), FIONREAD, &avail) == 0 && avail > 0) return false;
  }
  // The pty: what the job wrote to its terminal reaches the master through the tty layer's
  // buffer work, asynchronously. A poll of the master that finds nothing to read first waits for
  // that work (n_tty_poll -> tty_buffer_flush_work), so "nothing readable" means nothing in
  // flight either. The frozen job's terminal output is then all in the stream: the target's new
  // pty starts empty (the image carries no output; docs/run.md "Terminals").
  if (tty_pipe_.fd.valid()) {
    pollfd p{tty_pipe_.fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0) return false;
  }
  return true;
}

// The stdin the job has not read yet from its pipe, copied with tee(2) so the pipe keeps it (a
// cancelled move then has nothing to put back, and a job whose stdin already reached EOF keeps its
// EOF). The pipe is reached through the job's own fd 0 (/proc/PID/fd/0 opens a new reader of the
// same pipe; our write end may be closed already); a job whose fd 0 is no longer that pipe has
// nothing left in it to read.
Result<std::string> Relay::copy_stdin_pipe() const {
  const pid_t pid = host_->job_pid();
  if (pid <= 0) return make_error("job {}: its pid is unknown, so is its unread stdin", id_);
  UniqueFd rd(::open(fmt::format("/proc/{}/fd/0", pid).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!rd.valid()) return std::string();  // fd 0 closed: nothing the job can still read
  struct stat st{};
  if (::fstat(rd.get(), &st) != 0 || !S_ISFIFO(st.st_mode)) return std::string();
  int avail = 0;
  if (::ioctl(rd.get(), FIONREAD, &avail) != 0)
    return errno_error("job {}: FIONREAD on its stdin pipe", id_);
  if (avail == 0) return std::string();
  int sp[2];
  if (::pipe2(sp, O_CLOEXEC | O_NONBLOCK) != 0) return errno_error("job {}: pipe for its stdin copy", id_);
  UniqueFd copy_r(sp[0]), copy_w(sp[1]);
  const int cap = ::fcntl(rd.get(), F_GETPIPE_SZ);
  if (cap > 0) (void)::fcntl(copy_w.get(), F_SETPIPE_SZ, cap);
  const ssize_t n = ::tee(rd.get(), copy_w.get(), static_cast<std::size_t>(avail), SPLICE_F_NONBLOCK);
  if (n != avail)
    return n < 0 ? errno_error("job {}: tee of its stdin pipe", id_)
                 : make_error("job {}: copied {} of the {} bytes in its stdin pipe", id_, n, avail);
  copy_w.reset();
  std::string out(static_cast<std::size_t>(avail), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t r = ::read(copy_r.get(), out.data() + got, out.size() - got);
    if (r <= 0) return errno_error("job {}: reading the copy of its stdin", id_);
    got += static_cast<std::size_t>(r);
  }
  return out;
}

// ---- the stream --------------------------------------------------------------------------------

bool Relay::handle_stream_input() {
  bool broken = false;  // the frames before the end are still handled (a last `rejected`)
  for (;;) {
    char* t = in_.tail(kStreamReadBytes);
    const ssize_t n = ::read(sock_.get(), t, kStreamReadBytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      log_.warn("job={} relay stream failed: {}", id_, std::strerror(errno));
      broken = true;
      break;
    }
    if (n == 0) {
      broken = true;
      break;
    }
    in_.commit(static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < kStreamReadBytes) break;
  }
  while (in_.size() >= kFrameHeaderBytes && !ended()) {
    auto h = decode_header(in_.data());
    if (!h.ok()) {
      log_.warn("job={} anchor sent garbage: {}", id_, h.error().message);
      return false;
    }
    if (in_.size() < kFrameHeaderBytes + h->length) break;
    if (!handle_frame(h->type, in_.data() + kFrameHeaderBytes, h->length)) return false;
    in_.consume(kFrameHeaderBytes + h->length);
  }
  if (stdin_state_ == StdinState::kEofPending && stdin_.empty() && !moving() &&
      phase_ != Phase::kAttaching)
    close_job_stdin();
  return !broken || ended();
}

bool Relay::moving() const {
  switch (phase_) {
    case Phase::kHandingOff:
    case Phase::kHandedOff:
    case Phase::kParked:
    case Phase::kResuming:
    case Phase::kSuperseded:
    case Phase::kStreamLost: return true;
    default: return false;
  }
}

bool Relay::ended() const {
  return phase_ == Phase::kDone || phase_ == Phase::kAnchorGone || phase_ == Phase::kRejected ||
         phase_ == Phase::kDetached;
}

// One frame from the anchor. false: the stream is unusable (a frame the phase does not allow is a
// protocol error, as is a malformed one).
bool Relay::handle_frame(FrameType type, const char* p, std::uint32_t n) {
  const std::string_view payload(p, n);
  auto unexpected = [&] {
    log_.warn("job={} anchor sent a {} frame while the relay is {}", id_, frame_name(type), to_string(phase_));
    return false;
  };
  switch (type) {
    case FrameType::kStdin:
      if (phase_ == Phase::kAttaching) return unexpected();
      at_.stdin_bytes += n;
      if (n > 0) stdin_last_byte_ = p[n - 1];
      if (stdin_state_ == StdinState::kClosed)
        send_credit(n, true);
      else
        stdin_.append(p, n);
      return true;
    case FrameType::kStdinEof:
      if (phase_ == Phase::kAttaching) return unexpected();
      if (stdin_state_ == StdinState::kOpen) {
        stdin_state_ = StdinState::kEofPending;
        // A pty has no end of file to close: the job reads EOF when its line discipline gets the
        // EOF character (Ctrl-D) at the start of a line, so that is what we type (once more to
        // end an unterminated line first). Not canonical (a full-screen program): nothing.
        if (stdin_tty_ && tty_ctl_.valid()) {
          if (const unsigned char eof = pty_eof_char(tty_ctl_.get()); eof != 0) {
            const char c = static_cast<char>(eof);
            if (stdin_last_byte_ != '\n' && stdin_last_byte_ != '\r' && stdin_last_byte_ != c) stdin_.append(&c, 1);
            stdin_.append(&c, 1);
          }
        }
      }
      return true;
    case FrameType::kSignal:
      if (phase_ == Phase::kAttaching) return unexpected();
      if (n != 8) return unexpected();
      ++at_.signals;
      // The job is frozen during a move: a signal now could be lost with this copy.
      if (moving())
        held_signals_.push_back(HeldSignal{static_cast<int>(read_u32(p)), (read_u32(p + 4) & kSignalToGroup) != 0});
      else
        deliver_signal(static_cast<int>(read_u32(p)), (read_u32(p + 4) & kSignalToGroup) != 0);
      return true;
    // During a move these wait: the anchor repeats them once it has decided.
    case FrameType::kWindowSize: {
      if (phase_ == Phase::kAttaching) return unexpected();
      auto ws = decode_window_size(payload);
      if (!ws.ok()) {
        log_.warn("job={} {}", id_, ws.error().message);
        return false;
      }
      if (tty_ctl_.valid())  // a job without a pty has no window: ignored
        if (auto st = set_window_size(tty_ctl_.get(), ws->rows, ws->cols, ws->xpixel, ws->ypixel); !st.ok())
          log_.warn("job={} {}", id_, st.error().str());
      return true;
    }
    case FrameType::kStdoutClosed:
      if (phase_ == Phase::kAttaching) return unexpected();
      if (!moving()) close_output(out_pipe_);
      return true;
    case FrameType::kStderrClosed:
      if (phase_ == Phase::kAttaching) return unexpected();
      if (!moving()) close_output(err_pipe_);
      return true;
    case FrameType::kHandoffAck: {
      if (phase_ == Phase::kResuming) return true;  // we have asked to resume since
      if (phase_ != Phase::kHandedOff) return unexpected();
      auto ack = decode_handoff_ack(payload);
      if (!ack.ok()) {
        log_.warn("job={} {}", id_, ack.error().message);
        return false;
      }
      on_handoff_ack(*ack);
      return true;
    }
    case FrameType::kResumed:
      if (phase_ != Phase::kResuming) return unexpected();
      log_.info("job={} move cancelled; the anchor resumed this copy", id_);
      back_to_running();
      if (active_) active_->resumed = true;
      complete_active(ok_status());
      return true;
    case FrameType::kAttached: {
      if (phase_ != Phase::kAttaching) return unexpected();
      auto a = decode_attached(payload);
      if (!a.ok()) {
        log_.warn("job={} {}", id_, a.error().message);
        return false;
      }
      if (a->stdin_bytes != at_.stdin_bytes || a->signals != at_.signals) {
        log_.error("job={} the anchor sent stdin {} / signals {}, the source handed over {} / {}", id_,
                   a->stdin_bytes, a->signals, at_.stdin_bytes, at_.signals);
        return false;
      }
      log_.info("job={} attached to its anchor ({})", id_, describe(at_));
      phase_ = wait_status_ ? Phase::kDraining : Phase::kRunning;
      deliver_held_signals();
      grant_fresh_credit();
      if (on_attached_) {
        if (auto s = on_attached_(); !s.ok()) {
          log_.error("job={} cannot continue after attaching: {}", id_, s.error().str());
          queue_frame(FrameType::kNotice, fmt::format("job {} could not continue: {}", id_, s.error().str()));
          (void)flush_stream();
          return false;
        }
      }
      return true;
    }
    case FrameType::kRejected: {
      const std::string why = decode_message(payload);
      switch (phase_) {
        case Phase::kAttaching:
          log_.warn("job={} the anchor rejected this copy: {}", id_, why);
          phase_ = Phase::kRejected;
          return true;
        case Phase::kResuming:
          log_.info("job={} resume rejected ({}): the job runs elsewhere", id_, why);
          phase_ = Phase::kRejected;
          if (active_) active_->resumed = false;
          complete_active(ok_status());
          return true;
        case Phase::kHandedOff:
        case Phase::kParked:
          log_.info("job={} the anchor took the job's new stream ({})", id_, why);
          phase_ = Phase::kSuperseded;
          stream_lost_at_ms_ = now_ms();
          complete_active(make_error("the anchor rejected this stream: {}", why));
          sock_.reset();  // nothing more will come or go
          return true;
        default: return unexpected();
      }
    }
    default:
      log_.warn("job={} anchor sent a {} frame, which only a shepherd sends", id_, frame_name(type));
      return false;
  }
}

void Relay::on_handoff_ack(const HandoffAckMsg& ack) {
  if (ack.stdin_bytes != at_.stdin_bytes || ack.signals != at_.signals) {
    // The stream is reliable, so this is a bug on one side: the move must not go on with it.
    phase_ = Phase::kParked;
    complete_active(make_error("job {}: the anchor sent stdin {} / signals {}, we received {} / {}", id_,
                               ack.stdin_bytes, ack.signals, at_.stdin_bytes, at_.signals));
    return;
  }
  auto in_pipe = copy_stdin_pipe();
  phase_ = Phase::kParked;
  if (!in_pipe.ok()) {
    complete_active(in_pipe.take_error());
    return;
  }
  if (!active_) return;
  HandoffState& s = active_->state;
  s.at = at_;
  s.epoch = ack.epoch;
  s.stdin_in_pipe = std::move(in_pipe).value();
  if (stdin_tty_ && tty_ctl_.valid()) {
    // Nobody writes into the pty now (the anchor holds stdin since `migrating`, the job is
    // frozen): what its line discipline holds is exactly the input typed and not read.
    auto tty_in = copy_pty_input(tty_ctl_.get());
    if (!tty_in.ok()) {
      complete_active(Error{tty_in.error().code, fmt::format("job {}: {}", id_, tty_in.error().message)});
      return;
    }
    s.tty_input = std::move(tty_in).value();
  }
  s.stdin_buffered.assign(stdin_.data(), stdin_.size());
  s.stdin_ended = stdin_state_ != StdinState::kOpen;
  s.held_signals = held_signals_;
  s.wait_status = wait_status_;
  log_.info("job={} handed off at {} (epoch {} for the target)", id_, describe(at_), ack.epoch);
  complete_active(ok_status());
}

void Relay::back_to_running() {
  phase_ = wait_status_ ? Phase::kDraining : Phase::kRunning;
  deliver_held_signals();
  grant_fresh_credit();
}

// The stream broke or became unusable.
void Relay::stream_lost() {
  sock_.reset();
  out_.clear();
  splice_from_ = nullptr;
  switch (phase_) {
    case Phase::kHandedOff:
    case Phase::kParked:
    case Phase::kResuming:
      // The anchor may still take the target: this copy stays frozen until the migration settles.
      log_.warn("job={} relay stream lost during a move; waiting for the migration to settle", id_);
      if (active_ && active_->kind == Command::Kind::kCancel) {
        active_->resumed = false;
        complete_active(ok_status());
        phase_ = Phase::kAnchorGone;
        return;
      }
      complete_active(make_error("the relay stream to the anchor broke"));
      phase_ = Phase::kStreamLost;
      stream_lost_at_ms_ = now_ms();
      return;
    case Phase::kSuperseded:
    case Phase::kStreamLost: return;
    default:
      complete_active(make_error("the relay stream to the anchor broke"));
      phase_ = Phase::kAnchorGone;
  }
}

bool Relay::continue_splice() {
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
    const ssize_t n = ::splice(splice_from_->fd.get(), nullptr, sock_.get(), nullptr, splice_left_,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      log_.warn("job={} relay stream failed: {}", id_, std::strerror(errno));
      return false;
    }
    if (n == 0) {  // cannot happen: the bytes were in the pipe, and only we read it
      log_.error("job={} job pipe ran dry in a spliced frame", id_);
      return false;
    }
    splice_left_ -= static_cast<std::size_t>(n);
    last_send_ms_ = now_ms();
  }
  OutputPipe& p = *std::exchange(splice_from_, nullptr);
  if (p.close_after_splice) p.fd.reset();
  p.close_after_splice = false;
  return true;
}

bool Relay::flush_stream() {
  if (!sock_.valid()) return true;
  if (splice_from_ != nullptr) {
    if (!continue_splice()) return false;
    if (splice_from_ != nullptr) return true;
  }
  while (!out_.empty()) {
    const ssize_t n = ::send(sock_.get(), out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      log_.warn("job={} relay stream failed: {}", id_, std::strerror(errno));
      return false;
    }
    out_.consume(static_cast<std::size_t>(n));
    last_send_ms_ = now_ms();
  }
  return true;
}

// ---- migration commands --------------------------------------------------------------------------

void Relay::accept_control_connection() {
  const int c = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return;
  UniqueFd conn(c);
  const MigrationHandler& handler = migration_handler();
  if (!handler) {
    log_.warn("job={} control connection without a migration handler; closed", id_);
    return;
  }
  in_handler_ = true;
  try {
    handler(std::move(conn), control_);
  } catch (const std::exception& e) {  // e.g. no thread for it: the job must not die of it
    log_.error("job={} migration handler failed: {}", id_, e.what());
  }
  in_handler_ = false;
}

void Relay::take_commands() {
  if (auto cmd = control_->take()) start_command(cmd);
}

void Relay::complete(const std::shared_ptr<Command>& cmd, Status status) {
  control_->complete(cmd, std::move(status));
}

void Relay::complete_active(Status status) {
  if (active_) complete(std::exchange(active_, nullptr), std::move(status));
}

void Relay::start_command(const std::shared_ptr<Command>& cmd) {
  using Kind = Command::Kind;
  switch (cmd->kind) {
    case Kind::kBegin:
      if (phase_ != Phase::kRunning) {
        complete(cmd, make_error("job {} cannot be handed off while its relay is {}", id_,
                                 phase_ == Phase::kDraining ? "draining (the job has ended)" : to_string(phase_)));
        return;
      }
      log_.info("job={} handing off its stream (at {})", id_, describe(at_));
      queue_frame(FrameType::kMigrating);
      phase_ = Phase::kHandingOff;
      active_ = cmd;
      return;
    case Kind::kCancel:
      switch (phase_) {
        case Phase::kHandingOff:
        case Phase::kHandedOff:
        case Phase::kParked:
          complete_active(make_error("cancelled"));
          queue_frame(FrameType::kResume);
          phase_ = Phase::kResuming;
          active_ = cmd;
          return;
        case Phase::kSuperseded:
          cmd->resumed = false;
          complete(cmd, ok_status());
          phase_ = Phase::kRejected;
          return;
        case Phase::kStreamLost:
          cmd->resumed = false;
          complete(cmd, ok_status());
          phase_ = Phase::kAnchorGone;
          return;
        default:
          complete(cmd, make_error("job {}: no move to cancel (relay {})", id_, to_string(phase_)));
          return;
      }
    case Kind::kFinish:
      switch (phase_) {
        case Phase::kParked:
        case Phase::kSuperseded:
        case Phase::kStreamLost:
          log_.info("job={} move committed; this copy ends", id_);
          phase_ = Phase::kDetached;
          sock_.reset();  // quietly: no exit frame
          complete(cmd, ok_status());
          return;
        default:
          complete(cmd, make_error("job {}: nothing handed off to finish (relay {})", id_, to_string(phase_)));
          return;
      }
  }
}

void Relay::run_nested_until(const std::shared_ptr<Command>& cmd, std::int64_t deadline_ms) {
  for (;;) {
    // done is written under the control's lock, but only by this thread.
    if (cmd->done || ended() || now_ms() >= deadline_ms) return;
    loop_once(deadline_ms);
  }
}

// ---- the loop ----------------------------------------------------------------------------------

void Relay::loop_once(std::int64_t deadline_ms) {
  check_job_end();
  if (phase_ == Phase::kFinal && out_.empty() && splice_from_ == nullptr) phase_ = Phase::kDone;
  if (phase_ == Phase::kHandingOff && output_drained()) {
    queue_frame(FrameType::kHandoff, encode(HandoffMsg{at_}));
    phase_ = Phase::kHandedOff;
  }
  if ((phase_ == Phase::kSuperseded || phase_ == Phase::kStreamLost) &&
      now_ms() - stream_lost_at_ms_ >= kAbandonedMoveMs) {
    log_.error("job={} the migration did not settle within {} s; this copy dies", id_, kAbandonedMoveMs / 1000);
    phase_ = phase_ == Phase::kSuperseded ? Phase::kRejected : Phase::kAnchorGone;
  }
  if (ended()) return;

  pollfd pfd[9];
  int n = 0;
  const bool reading_output = phase_ == Phase::kRunning || phase_ == Phase::kDraining || phase_ == Phase::kHandingOff;
  // Output is read only while there is room (TCP back-pressure reaches the job through its
  // pipes) and not after the last frame.
  int unsent = 0;
  const bool sock_busy = tcp_ && sock_.valid() && ::ioctl(sock_.get(), SIOCOUTQNSD, &unsent) == 0 &&
                         unsent >= kNotSentLowatBytes;
  const bool room = reading_output && out_.size() < kMaxFramePayload && splice_from_ == nullptr && !sock_busy;
  const bool pending = !out_.empty() || splice_from_ != nullptr;
  const int i_sock = sock_.valid() ? n : -1;
  if (i_sock >= 0) pfd[n++] = {sock_.get(), static_cast<short>(POLLIN | (pending || sock_busy ? POLLOUT : 0)), 0};
  const int i_out = (out_pipe_.fd.valid() && room) ? n : -1;
  if (i_out >= 0) pfd[n++] = {out_pipe_.fd.get(), POLLIN, 0};
  const int i_err = (err_pipe_.fd.valid() && room) ? n : -1;
  if (i_err >= 0) pfd[n++] = {err_pipe_.fd.get(), POLLIN, 0};
  const int i_tty = (tty_pipe_.fd.valid() && room) ? n : -1;
  if (i_tty >= 0) pfd[n++] = {tty_pipe_.fd.get(), POLLIN, 0};
  const bool feeding = phase_ == Phase::kRunning || phase_ == Phase::kDraining;
  const int i_in = (feeding && job_in_.valid() && !stdin_.empty()) ? n : -1;
  if (i_in >= 0) pfd[n++] = {job_in_.get(), POLLOUT, 0};
  const int i_host = host_->event_fd() >= 0 && !wait_status_ ? n : -1;
  if (i_host >= 0) pfd[n++] = {host_->event_fd(), POLLIN, 0};
  const int i_listen = listen_fd_.valid() && !in_handler_ ? n : -1;
  if (i_listen >= 0) pfd[n++] = {listen_fd_.get(), POLLIN, 0};
  const int i_wake = control_->wake_fd() >= 0 ? n : -1;
  if (i_wake >= 0) pfd[n++] = {control_->wake_fd(), POLLIN, 0};

  const bool heartbeats = sock_.valid() && phase_ != Phase::kAttaching && !last_frame_queued();
  std::int64_t wait = heartbeats ? std::max<std::int64_t>(0, last_send_ms_ + kHeartbeatMs - now_ms()) : 1000;
  if (deadline_ms > 0) wait = std::min(wait, std::max<std::int64_t>(0, deadline_ms - now_ms()));
  if (::poll(pfd, static_cast<nfds_t>(n), static_cast<int>(wait)) < 0 && errno != EINTR) {
    log_.error("job={} poll failed: {}", id_, std::strerror(errno));
    stream_lost();
    return;
  }
  if (i_sock >= 0 && (pfd[i_sock].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !handle_stream_input()) {
    stream_lost();
    return;
  }
  if (ended()) return;
  if (i_out >= 0 && pfd[i_out].revents != 0 && reading_output && frame_allowed(out_pipe_.data))
    queue_frame(out_pipe_.data, Payload{{}, &out_pipe_});
  if (i_err >= 0 && pfd[i_err].revents != 0 && splice_from_ == nullptr && frame_allowed(err_pipe_.data))
    queue_frame(err_pipe_.data, Payload{{}, &err_pipe_});
  if (i_tty >= 0 && pfd[i_tty].revents != 0 && splice_from_ == nullptr && tty_pipe_.fd.valid() &&
      frame_allowed(tty_pipe_.data))
    queue_frame(tty_pipe_.data, Payload{{}, &tty_pipe_});
  if (i_in >= 0 && pfd[i_in].revents != 0 && job_in_.valid()) write_job_stdin();
  if (i_host >= 0 && pfd[i_host].revents != 0) {
    if (auto st = host_->on_event()) {
      wait_status_ = st;
      if (phase_ == Phase::kRunning) phase_ = Phase::kDraining;
    }
  }
  if (i_listen >= 0 && pfd[i_listen].revents != 0) accept_control_connection();
  if (i_wake >= 0 && pfd[i_wake].revents != 0) take_commands();
  if (heartbeats && !ended() && out_.empty() && splice_from_ == nullptr &&
      now_ms() - last_send_ms_ >= kHeartbeatMs && frame_allowed(FrameType::kHeartbeat))
    queue_frame(FrameType::kHeartbeat);
  if (!flush_stream()) stream_lost();
}

Relay::Phase Relay::run() {
  last_send_ms_ = now_ms();
  while (!ended()) {
    loop_once(0);
    if (!endpoint_later_.empty()) {
      if (auto s = open_control_endpoint(endpoint_later_); !s.ok())
        log_.warn("job={} cannot be moved: {}", id_, s.error().str());
      endpoint_later_.clear();
    }
  }
  complete_active(make_error("the job's relay has ended ({})", to_string(phase_)));
  control_->detach(phase_);
  listen_fd_.reset();
  return phase_;
}

void Relay::linger() {
  if (!sock_.valid()) return;
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

}  // namespace osmo::run
