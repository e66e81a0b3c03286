// SPDX-License-Identifier: GPL-2.0-or-later
// The shepherd's relay loop (see relay.hpp).
#include "run/relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "run/exit_status.hpp"
#include "run/fd_util.hpp"

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

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace

Relay::Relay(UniqueFd stream, JobPipes pipes, JobHost* host, std::string job_id, Logger log)
    : sock_(std::move(stream)), host_(host), id_(std::move(job_id)), log_(std::move(log)),
      job_in_(std::move(pipes.in)),
      out_pipe_{std::move(pipes.out), FrameType::kStdout, FrameType::kStdoutEof},
      err_pipe_{std::move(pipes.err), FrameType::kStderr, FrameType::kStderrEof} {
  set_stream_liveness(sock_.get());
  tcp_ = ::setsockopt(sock_.get(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &kNotSentLowatBytes,
                      sizeof kNotSentLowatBytes) == 0;
  if (auto s = set_nonblocking(sock_.get(), true); !s.ok())
    log_.warn("job={} {}", id_, s.error().str());
  for (int fd : {job_in_.get(), out_pipe_.fd.get(), err_pipe_.fd.get()})
    if (fd >= 0) (void)set_nonblocking(fd, true);
}

void Relay::queue_frame(FrameType type, Payload payload) {
  if (last_frame_queued() || phase_ == Phase::kAnchorGone) {
    log_.error("job={} {} frame after the last frame, not sent", id_, frame_name(type));
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
  if (!out_.empty() || splice_from_ != nullptr || ::ioctl(p.fd.get(), FIONREAD, &avail) != 0 ||
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
  return true;
}

// The payload is read straight into the outgoing queue, behind a header written afterwards.
void Relay::read_output_in_place(OutputPipe& p) {
  char* t = out_.tail(kFrameHeaderBytes + kMaxFramePayload);
  const ssize_t n = ::read(p.fd.get(), t + kFrameHeaderBytes, kMaxFramePayload);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    p.fd.reset();
    encode_header(t, p.eof, 0);
    out_.commit(kFrameHeaderBytes);
    return;
  }
  encode_header(t, p.data, static_cast<std::uint32_t>(n));
  out_.commit(kFrameHeaderBytes + static_cast<std::size_t>(n));
}

void Relay::job_ended(int wait_status) {
  wait_status_ = wait_status;
  if (phase_ == Phase::kRunning) phase_ = Phase::kDraining;
}

void Relay::send_credit(std::uint32_t n, bool force) {
  credit_owed_ += n;
  if (credit_owed_ == 0 || (!force && credit_owed_ < kCreditBatchBytes) || last_frame_queued()) return;
  queue_frame(FrameType::kCredit, u32_payload(credit_owed_).view());
  credit_owed_ = 0;
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

bool Relay::handle_stream_input() {
  for (;;) {
    char* t = in_.tail(kStreamReadBytes);
    const ssize_t n = ::read(sock_.get(), t, kStreamReadBytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      log_.warn("job={} relay stream failed: {}", id_, std::strerror(errno));
      return false;
    }
    if (n == 0) return false;
    in_.commit(static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < kStreamReadBytes) break;
  }
  while (in_.size() >= kFrameHeaderBytes) {
    auto h = decode_header(in_.data());
    if (!h.ok()) {
      log_.warn("job={} anchor sent garbage: {}", id_, h.error().message);
      return false;
    }
    if (in_.size() < kFrameHeaderBytes + h->length) break;
    const char* p = in_.data() + kFrameHeaderBytes;
    switch (h->type) {
      case FrameType::kStdin:
        if (stdin_state_ == StdinState::kClosed)
          send_credit(h->length, true);
        else
          stdin_.append(p, h->length);
        break;
      case FrameType::kStdinEof:
        if (stdin_state_ == StdinState::kOpen) stdin_state_ = StdinState::kEofPending;
        break;
      case FrameType::kSignal:
        if (h->length == 8)
          host_->signal(static_cast<int>(read_u32(p)), (read_u32(p + 4) & kSignalToGroup) != 0);
        break;
      case FrameType::kStdoutClosed: close_output(out_pipe_); break;
      case FrameType::kStderrClosed: close_output(err_pipe_); break;
      default:
        log_.warn("job={} anchor sent a {} frame, which only a shepherd sends", id_,
                  frame_name(h->type));
        return false;
    }
    in_.consume(kFrameHeaderBytes + h->length);
  }
  if (stdin_state_ == StdinState::kEofPending && stdin_.empty()) close_job_stdin();
  return true;
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

// The exit frame follows the job's last output: it is queued once the job has ended and both of
// its output pipes are closed.
void Relay::check_job_end() {
  if (phase_ != Phase::kDraining || out_pipe_.fd.valid() || err_pipe_.fd.valid()) return;
  const int st = *wait_status_;
  const std::uint32_t kind = WIFSIGNALED(st) ? kExitSignal : kExitCode;
  const auto value = static_cast<std::uint32_t>(WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  queue_frame(FrameType::kExit, u32_pair_payload(kind, value).view());
}

void Relay::loop_once() {
  pollfd pfd[6];
  int n = 0;
  // Output is read only while there is room (TCP back-pressure reaches the job through its
  // pipes) and not after the last frame.
  int unsent = 0;
  const bool sock_busy = tcp_ && ::ioctl(sock_.get(), SIOCOUTQNSD, &unsent) == 0 &&
                         unsent >= kNotSentLowatBytes;
  const bool room = out_.size() < kMaxFramePayload && !last_frame_queued() &&
                    splice_from_ == nullptr && !sock_busy;
  const bool pending = !out_.empty() || splice_from_ != nullptr;
  pfd[n++] = {sock_.get(), static_cast<short>(POLLIN | (pending || sock_busy ? POLLOUT : 0)), 0};
  const int i_out = (out_pipe_.fd.valid() && room) ? n : -1;
  if (i_out >= 0) pfd[n++] = {out_pipe_.fd.get(), POLLIN, 0};
  const int i_err = (err_pipe_.fd.valid() && room) ? n : -1;
  if (i_err >= 0) pfd[n++] = {err_pipe_.fd.get(), POLLIN, 0};
  const int i_in = (job_in_.valid() && !stdin_.empty()) ? n : -1;
  if (i_in >= 0) pfd[n++] = {job_in_.get(), POLLOUT, 0};
  const int i_host = host_->event_fd() >= 0 && !wait_status_ ? n : -1;
  if (i_host >= 0) pfd[n++] = {host_->event_fd(), POLLIN, 0};
  const std::int64_t wait = std::max<std::int64_t>(0, last_send_ms_ + kHeartbeatMs - now_ms());
  if (::poll(pfd, static_cast<nfds_t>(n), static_cast<int>(wait)) < 0 && errno != EINTR) {
    log_.error("job={} poll failed: {}", id_, std::strerror(errno));
    phase_ = Phase::kAnchorGone;
    return;
  }
  if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !handle_stream_input()) {
    phase_ = Phase::kAnchorGone;
    return;
  }
  if (i_out >= 0 && pfd[i_out].revents != 0)
    queue_frame(out_pipe_.data, Payload{{}, &out_pipe_});
  if (i_err >= 0 && pfd[i_err].revents != 0 && splice_from_ == nullptr)
    queue_frame(err_pipe_.data, Payload{{}, &err_pipe_});
  if (i_in >= 0 && pfd[i_in].revents != 0 && job_in_.valid()) write_job_stdin();
  if (i_host >= 0 && pfd[i_host].revents != 0)
    if (auto st = host_->on_event()) job_ended(*st);
  if (out_.empty() && splice_from_ == nullptr && now_ms() - last_send_ms_ >= kHeartbeatMs &&
      !last_frame_queued())
    queue_frame(FrameType::kHeartbeat);
  if (!flush_stream()) phase_ = Phase::kAnchorGone;
}

Relay::Phase Relay::run() {
  last_send_ms_ = now_ms();
  for (;;) {
    check_job_end();
    if (phase_ == Phase::kFinal && out_.empty() && splice_from_ == nullptr) phase_ = Phase::kDone;
    if (phase_ == Phase::kDone || phase_ == Phase::kAnchorGone) return phase_;
    loop_once();
  }
}

void Relay::linger() {
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
