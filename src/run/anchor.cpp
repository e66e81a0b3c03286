// SPDX-License-Identifier: GPL-2.0-or-later
// The home anchor (see anchor.hpp).
#include "run/anchor.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/fd_io.hpp"
#include "platform/linux/fd_passing.hpp"
#include "run/byte_buffer.hpp"
#include "run/exit_status.hpp"
#include "run/fd_util.hpp"
#include "run/frame.hpp"
#include "run/handoff_frames.hpp"
#include "run/raw_terminal.hpp"

namespace osmo::run {

namespace {

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGTSTP, SIGCONT};
// A stream the home daemon passed us must say `attach` within this long.
constexpr std::int64_t kAttachFrameWaitMs = 5000;
// A stream we rejected or replaced is read to its end (so that closing it cannot reset what we
// sent last) for at most this long.
constexpr std::int64_t kRetiredLingerMs = 5000;
// Streams waiting to attach at once; more are refused (only the home daemon passes them, but a
// bound is cheap).
constexpr std::size_t kMaxCandidates = 8;

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Where the job's stream stands, as the anchor sees it.
enum class Link {
  kStreaming,  // a shepherd's stream is live: relay both ways
  kMigrating,  // it sent `migrating`: its job is frozen; we hold stdin and signals
  kHandedOff,  // it sent `handoff` and we acknowledged: waiting for `resume` or `attach`
};

struct HeldSignal {
  std::uint32_t signo;
  std::uint32_t flags;
};

// State shared by the three threads. The stdin thread may outlive run_anchor (it can be blocked
// in read() on a terminal), so it holds a shared_ptr.
struct Shared {
  AnchorOptions opt;

  // mu guards everything below and every send on the stream: frames go out whole, and what is
  // counted is exactly what was sent on the stream that is current.
  std::mutex mu;
  std::condition_variable cv;
  UniqueFd sock;  // the current stream; replaced (and closed) only by the reader, under mu
  Link link = Link::kStreaming;
  std::uint64_t credit = 0;        // stdin bytes the current shepherd will accept
  std::uint64_t stdin_sent = 0;    // stdin payload bytes sent, since the job started
  std::uint64_t signals_sent = 0;  // signal frames sent, since the job started
  std::string pending_stdin;       // read from our stdin, not sent yet (no credit, or a move)
  bool stdin_eof_read = false;
  bool stdin_eof_sent = false;
  std::vector<HeldSignal> held_signals;  // typed during a move
  bool stop = false;

  UniqueFd done_event;       // written once when the outcome is known
  std::atomic<bool> finished{false};
  int exit_code = 0;         // valid once finished
  std::string message;       // one line for stderr, or empty
  std::string job_id;
  std::string node;          // reader thread only (after start)

  bool out_is_pipe = false;
  bool err_is_pipe = false;
  // The caller's terminal is in raw mode (RawTerminal): our own lines need "\r\n".
  std::atomic<bool> raw{false};
  bool tty_closed = false;  // writing the job's terminal output failed: dropped from then on

  // One line of ours for the caller's stderr.
  void say(std::string line) {
    line += raw.load() ? "\r\n" : "\n";
    (void)write_all(opt.err_fd, line);
  }

  std::string node_name() const { return node.empty() ? "the node" : "node " + node; }

  // Sends one whole frame on the current stream (mu held). A stream that does not take it within
  // kAnchorDeadAfterMs is shut down: the reader then reports it.
  bool send_locked(const char* p, std::size_t n) {
    if (!sock.valid() || stop) return false;
    std::size_t off = 0;
    const std::int64_t deadline = now_ms() + kAnchorDeadAfterMs;
    while (off < n) {
      const ssize_t r = ::send(sock.get(), p + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (r >= 0) {
        off += static_cast<std::size_t>(r);
        continue;
      }
      if (errno == EINTR) continue;
      const std::int64_t left = deadline - now_ms();
      if (errno != EAGAIN || left <= 0) {
        ::shutdown(sock.get(), SHUT_RDWR);
        return false;
      }
      pollfd pfd{sock.get(), POLLOUT, 0};
      (void)::poll(&pfd, 1, static_cast<int>(left));
    }
    return true;
  }
  bool send_locked(const std::vector<char>& f) { return send_locked(f.data(), f.size()); }
  bool send_frame_locked(FrameType type, std::string_view payload = {}) {
    std::vector<char> f;
    append_frame(f, type, payload);
    return send_locked(f);
  }

  // Sends what stdin we hold as far as the current stream allows (mu held).
  void flush_stdin_locked() {
    while (link == Link::kStreaming && !pending_stdin.empty() && credit > 0) {
      const std::size_t n = std::min<std::size_t>({pending_stdin.size(), credit, kMaxFramePayload});
      std::vector<char> f;
      append_frame(f, FrameType::kStdin, std::string_view(pending_stdin.data(), n));
      if (!send_locked(f)) return;
      stdin_sent += n;
      credit -= n;
      pending_stdin.erase(0, n);
    }
    if (link == Link::kStreaming && pending_stdin.empty() && stdin_eof_read && !stdin_eof_sent &&
        send_frame_locked(FrameType::kStdinEof))
      stdin_eof_sent = true;
  }

  // Sends a signal now, or holds it until the move is settled (mu held).
  void signal_locked(std::uint32_t signo, std::uint32_t flags) {
    if (link != Link::kStreaming || !sock.valid()) {
      held_signals.push_back(HeldSignal{signo, flags});
      return;
    }
    if (send_frame_locked(FrameType::kSignal, u32_pair_payload(signo, flags).view())) ++signals_sent;
  }

  void finish(int code, std::string msg) {
    if (finished.exchange(true)) return;
    exit_code = code;
    message = std::move(msg);
    {
      std::lock_guard lk(mu);
      stop = true;
    }
    cv.notify_all();
    const std::uint64_t one = 1;
    (void)!::write(done_event.get(), &one, sizeof one);
  }
};

void stdin_loop(std::shared_ptr<Shared> sh) {
  std::unique_ptr<char[]> buf(new char[kFrameHeaderBytes + kMaxFramePayload]);
  for (;;) {
    std::uint64_t want = 0;
    {
      std::unique_lock lk(sh->mu);
      sh->cv.wait(lk, [&] {
        return sh->stop || (sh->pending_stdin.empty() && sh->link == Link::kStreaming && sh->credit > 0);
      });
      if (sh->stop) return;
      want = std::min<std::uint64_t>(sh->credit, kMaxFramePayload);
    }
    const ssize_t n = ::read(sh->opt.in_fd, buf.get() + kFrameHeaderBytes, want);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard lk(sh->mu);
    if (n <= 0) {
      // EOF, or a stdin that cannot be read (closed, EIO on a lost terminal): the job sees EOF.
      sh->stdin_eof_read = true;
      sh->flush_stdin_locked();
      return;
    }
    const auto len = static_cast<std::size_t>(n);
    if (sh->link == Link::kStreaming && sh->pending_stdin.empty() && sh->credit >= len) {
      // The common case, without a copy: the header goes in front of the bytes read.
      encode_header(buf.get(), FrameType::kStdin, static_cast<std::uint32_t>(len));
      if (!sh->send_locked(buf.get(), kFrameHeaderBytes + len)) return;
      sh->stdin_sent += len;
      sh->credit -= len;
    } else {
      // A move began meanwhile: the bytes wait for the stream that continues the job.
      sh->pending_stdin.append(buf.get() + kFrameHeaderBytes, len);
      sh->flush_stdin_locked();
    }
  }
}

bool is_pipe(int fd) {
  struct stat st{};
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

// The reader thread: reads the current stream (and, during a move, the streams of shepherds that
// want to take it over) and decides moves.
class Reader {
 public:
  explicit Reader(Shared& sh) : sh_(sh), control_fd_(sh.opt.control_fd) {}
  void run();

 private:
  // A stream other than the current one: a candidate (its first frame must be `attach`) or a
  // retired one (read to its end and closed).
  struct Conn {
    UniqueFd fd;
    ByteBuffer in{64 * 1024};
    std::int64_t until_ms = 0;
  };

  bool read_current();                     // false: finished
  bool handle_frame(FrameType type, std::string_view payload);  // false: finished
  bool current_broke(const std::string& why);                  // false: finished
  bool check_timers();                     // false: finished
  void read_control();
  void read_candidate(Conn& c);
  void decide_attach(Conn& c, const AttachMsg& a);
  void reject(Conn& c, const std::string& why);
  void retire(UniqueFd fd);
  void resend_closed_locked();
  void resend_window_locked();
  void deliver(int fd, bool& closed, FrameType closed_frame, const char* p, std::size_t n);
  bool splice_rest_of_frame();
  bool protocol_error(const std::string& what) {
    sh_.finish(kExitProtocol, "osmo run: " + what);
    return false;
  }

  Shared& sh_;
  ByteBuffer in_{2 * (kFrameHeaderBytes + kMaxFramePayload)};  // the current stream's
  bool out_closed_ = false, err_closed_ = false, started_ = false;
  std::uint64_t stdout_recv_ = 0, stderr_recv_ = 0;  // payload bytes received since the job started
  std::int64_t quiet_since_ = now_ms();   // last frame on the current stream
  std::uint32_t next_epoch_ = 1;          // the epoch the next handoff hands out (the first stream is 0)
  std::uint32_t handed_epoch_ = 0;        // the epoch the current handoff accepts
  std::int64_t handoff_since_ = 0;        // last sign of life of the handed-off stream
  std::string moving_from_;               // the node a move started from (for messages)
  std::vector<Conn> candidates_;
  std::vector<Conn> retired_;
  int control_fd_;                        // not owned unless it is owned_control_
  UniqueFd owned_control_;
  std::string control_buf_;
  std::vector<UniqueFd> control_fds_;
  std::int64_t next_reregister_ms_ = 0;
};

// Writes job output to one of our fds. When our reader is gone (EPIPE), tells the shepherd to
// close the job's end, so the job gets SIGPIPE as it would locally, and drops what still comes.
void Reader::deliver(int fd, bool& closed, FrameType closed_frame, const char* p, std::size_t n) {
  if (closed) return;
  if (write_all(fd, std::string_view(p, n)).ok()) return;
  closed = true;
  std::lock_guard lk(sh_.mu);
  if (sh_.link == Link::kStreaming) sh_.send_frame_locked(closed_frame);  // else: resent after the move
}

// After a move: the new (or resumed) shepherd learns which of our outputs are gone.
// A job with a pty, after a move or a cancelled one: the caller's window may have changed while
// no window-size frame could go out, so the shepherd that now runs the job gets the current size
// (its pty was given the size at the freeze; an unchanged size makes no SIGWINCH). mu held.
void Reader::resend_window_locked() {
  winsize w{};
  if (sh_.opt.term_fd < 0 || ::ioctl(sh_.opt.term_fd, TIOCGWINSZ, &w) != 0 || w.ws_row == 0 || w.ws_col == 0) return;
  const WindowSize ws{w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel};
  (void)sh_.send_frame_locked(FrameType::kWindowSize, window_size_payload(ws).view());
}

void Reader::resend_closed_locked() {
  if (out_closed_) sh_.send_frame_locked(FrameType::kStdoutClosed);
  if (err_closed_) sh_.send_frame_locked(FrameType::kStderrClosed);
}

// Fast path for bulk output: when the buffer ends in the head of a large stdout/stderr frame and
// our output is a pipe, the rest of the payload moves from the socket into the pipe with splice(2)
// (no copy through user space). Returns false when the stream failed (finish() was called).
bool Reader::splice_rest_of_frame() {
  constexpr std::size_t kSpliceMinBytes = 64 * 1024;
  if (in_.size() < kFrameHeaderBytes) return true;
  auto h = decode_header(in_.data());
  if (!h.ok() || (h->type != FrameType::kStdout && h->type != FrameType::kStderr)) return true;
  if (sh_.link == Link::kHandedOff) return true;  // handle_frame refuses it
  const bool to_out = h->type == FrameType::kStdout;
  const int fd = to_out ? sh_.opt.out_fd : sh_.opt.err_fd;
  bool& closed = to_out ? out_closed_ : err_closed_;
  const std::size_t have = in_.size() - kFrameHeaderBytes;
  std::size_t left = h->length - have;
  if (closed || left < kSpliceMinBytes || !(to_out ? sh_.out_is_pipe : sh_.err_is_pipe)) return true;
  const FrameType closed_frame = to_out ? FrameType::kStdoutClosed : FrameType::kStderrClosed;
  (to_out ? stdout_recv_ : stderr_recv_) += h->length;
  deliver(fd, closed, closed_frame, in_.data() + kFrameHeaderBytes, have);
  in_.clear();
  char scratch[65536];
  const int sock = sh_.sock.get();
  while (left > 0) {
    const ssize_t m = closed ? ::read(sock, scratch, std::min(left, sizeof scratch))
                             : ::splice(sock, nullptr, fd, nullptr, left, SPLICE_F_MOVE);
    if (m > 0) {
      left -= static_cast<std::size_t>(m);
      continue;
    }
    if (m < 0 && errno == EINTR) continue;
    if (m < 0 && errno == EPIPE && !closed) {
      // Our reader is gone: tell the shepherd (the job gets SIGPIPE) and drop the rest.
      closed = true;
      std::lock_guard lk(sh_.mu);
      if (sh_.link == Link::kStreaming) sh_.send_frame_locked(closed_frame);
      continue;
    }
    if (m < 0 && (errno == EINVAL || errno == ENOSYS) && !closed) {
      // Not spliceable after all (e.g. an O_APPEND pipe end): copy the rest.
      const ssize_t r = ::read(sock, scratch, std::min(left, sizeof scratch));
      if (r > 0) {
        deliver(fd, closed, closed_frame, scratch, static_cast<std::size_t>(r));
        left -= static_cast<std::size_t>(r);
        continue;
      }
    }
    // A stream that breaks in the middle of output cannot be handed off any more.
    const std::string why = m == 0 ? "connection closed" : std::strerror(errno);
    sh_.finish(kExitNodeDied, fmt::format("osmo run: lost {} while job {} was running ({})",
                                          sh_.node_name(), sh_.job_id, why));
    return false;
  }
  quiet_since_ = now_ms();
  return true;
}

bool Reader::current_broke(const std::string& why) {
  switch (sh_.link) {
    case Link::kStreaming:
      sh_.finish(kExitNodeDied,
                 started_ ? fmt::format("osmo run: lost {} while job {} was running ({})",
                                        sh_.node_name(), sh_.job_id, why)
                          : fmt::format("osmo run: {} closed the job stream before the job started ({})",
                                        sh_.node_name(), why));
      return false;
    case Link::kMigrating:
      // Before `handoff` part of the output may be missing: no other node can continue the job.
      sh_.finish(kExitNodeDied, fmt::format("osmo run: lost {} while job {} was being moved ({})",
                                            sh_.node_name(), sh_.job_id, why));
      return false;
    case Link::kHandedOff: {
      // Everything is accounted for: a target may still attach (check_timers bounds the wait).
      std::lock_guard lk(sh_.mu);
      sh_.sock.reset();
      in_.clear();
      return true;
    }
  }
  return false;
}

bool Reader::read_current() {
  const std::size_t room = kFrameHeaderBytes + kMaxFramePayload;
  const ssize_t n = ::read(sh_.sock.get(), in_.tail(room), room);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return current_broke(n == 0 ? "connection closed" : std::strerror(errno));
  in_.commit(static_cast<std::size_t>(n));
  while (in_.size() >= kFrameHeaderBytes) {
    auto h = decode_header(in_.data());
    if (!h.ok()) return protocol_error(h.error().message);
    if (in_.size() < kFrameHeaderBytes + h->length) break;
    if (!handle_frame(h->type, std::string_view(in_.data() + kFrameHeaderBytes, h->length))) return false;
    if (!sh_.sock.valid()) return true;  // replaced or closed by a decision: in_ is gone too
    in_.consume(kFrameHeaderBytes + h->length);
  }
  quiet_since_ = now_ms();
  if (sh_.link == Link::kHandedOff) handoff_since_ = quiet_since_;
  return splice_rest_of_frame();
}

bool Reader::handle_frame(FrameType type, std::string_view payload) {
  const char* pl = payload.data();
  const auto len = static_cast<std::uint32_t>(payload.size());
  const bool handed_off = sh_.link == Link::kHandedOff;
  auto out_of_place = [&] {
    return protocol_error(fmt::format("{} sent a {} frame {}", sh_.node_name(), frame_name(type),
                                      handed_off ? "after handing the job off" : "out of place"));
  };
  switch (type) {
    case FrameType::kStdout:
      if (handed_off) return out_of_place();
      stdout_recv_ += len;
      deliver(sh_.opt.out_fd, out_closed_, FrameType::kStdoutClosed, pl, len);
      return true;
    case FrameType::kStderr:
      if (handed_off) return out_of_place();
      stderr_recv_ += len;
      deliver(sh_.opt.err_fd, err_closed_, FrameType::kStderrClosed, pl, len);
      return true;
    case FrameType::kTty:
      // The job's terminal output: to the caller's terminal. Not counted in the offsets: a move
      // drains the old pty into the old stream before `handoff`, and the new pty's output comes
      // only on the new stream. A terminal we cannot write to any more drops it, as a hung-up one.
      if (handed_off) return out_of_place();
      if (!sh_.tty_closed &&
          !write_all(sh_.opt.tty_out_fd >= 0 ? sh_.opt.tty_out_fd : sh_.opt.out_fd, payload).ok())
        sh_.tty_closed = true;
      return true;
    case FrameType::kStdoutEof:
    case FrameType::kStderrEof:
      if (handed_off) return out_of_place();
      return true;
    case FrameType::kHeartbeat: return true;
    case FrameType::kCredit:
      if (len != 4) return protocol_error("malformed credit frame");
      {
        std::lock_guard lk(sh_.mu);
        // Credit granted before a move is void: the shepherd grants afresh after it.
        if (sh_.link != Link::kStreaming) return true;
        sh_.credit += read_u32(pl);
        sh_.flush_stdin_locked();
      }
      sh_.cv.notify_all();
      return true;
    case FrameType::kStarted: {
      if (sh_.link != Link::kStreaming) return out_of_place();
      auto j = nlohmann::json::parse(payload, nullptr, false);
      if (j.is_object()) {
        sh_.job_id = j.value("id", "");
        sh_.node = j.value("node", sh_.node);
        if (sh_.opt.verbose)
          sh_.say(fmt::format("osmo run: job {} runs on {} as pid {}", sh_.job_id, sh_.node,
                              j.value("pid", 0)));
      }
      started_ = true;
      return true;
    }
    case FrameType::kNotice:
      sh_.say(fmt::format("osmo run: {}", payload));
      return true;
    case FrameType::kRefused:
      if (sh_.link != Link::kStreaming) return out_of_place();
      sh_.finish(kExitRefused, "osmo run: " + decode_message(payload));
      return false;
    case FrameType::kExit: {
      if (sh_.link != Link::kStreaming) return out_of_place();
      if (len != 8) return protocol_error("malformed exit frame");
      const std::uint32_t kind = read_u32(pl), value = read_u32(pl + 4);
      const int code = kind == kExitSignal ? kExitSignalBase + static_cast<int>(value)
                                           : static_cast<int>(value & 0xff);
      if (kind == kExitSignal && sh_.opt.exit_signal != nullptr) *sh_.opt.exit_signal = static_cast<int>(value);
      std::string msg;
      if (sh_.opt.verbose)
        msg = kind == kExitSignal
                  ? fmt::format("osmo run: job {} was killed by signal {} ({})", sh_.job_id, value,
                                strsignal(static_cast<int>(value)))
                  : fmt::format("osmo run: job {} exited with status {}", sh_.job_id, value);
      sh_.finish(code, msg);
      return false;
    }
    case FrameType::kMigrating: {
      if (sh_.link != Link::kStreaming || !started_) return out_of_place();
      std::lock_guard lk(sh_.mu);
      sh_.link = Link::kMigrating;
      sh_.credit = 0;
      moving_from_ = sh_.node;
      return true;
    }
    case FrameType::kHandoff: {
      if (sh_.link != Link::kMigrating) return out_of_place();
      auto h = decode_handoff(payload);
      if (!h.ok()) return protocol_error(h.error().message);
      std::lock_guard lk(sh_.mu);
      // Output must match exactly (it all came on this stream); stdin and signals we sent may
      // still be on their way to the shepherd, which the ack's counts tell it.
      if (h->at.stdout_bytes != stdout_recv_ || h->at.stderr_bytes != stderr_recv_ ||
          h->at.stdin_bytes > sh_.stdin_sent || h->at.signals > sh_.signals_sent)
        return protocol_error(fmt::format(
            "{} handed job {} off at {}, but the anchor has stdout {}, stderr {}, stdin {}, signals {}",
            sh_.node_name(), sh_.job_id, describe(h->at), stdout_recv_, stderr_recv_, sh_.stdin_sent,
            sh_.signals_sent));
      handed_epoch_ = next_epoch_++;
      if (!sh_.send_frame_locked(FrameType::kHandoffAck,
                                 encode(HandoffAckMsg{sh_.stdin_sent, sh_.signals_sent, handed_epoch_})))
        return true;  // the stream broke: the reader sees it next
      sh_.link = Link::kHandedOff;
      handoff_since_ = now_ms();
      return true;
    }
    case FrameType::kResume: {
      if (sh_.link == Link::kStreaming) return out_of_place();
      // Decision: the old copy continues (see decide_attach for the races).
      std::lock_guard lk(sh_.mu);
      if (!sh_.send_frame_locked(FrameType::kResumed)) return true;
      sh_.link = Link::kStreaming;
      sh_.credit = 0;  // the shepherd grants afresh
      resend_closed_locked();
      resend_window_locked();
      for (const auto& s : std::exchange(sh_.held_signals, {})) sh_.signal_locked(s.signo, s.flags);
      if (sh_.opt.verbose)
        sh_.say(fmt::format("osmo run: job {} stays on node {} (move cancelled)", sh_.job_id, sh_.node));
      return true;
    }
    default:
      return protocol_error(fmt::format("the node sent a {} frame, which only an anchor sends", frame_name(type)));
  }
}

// The arbitration between the old copy and a new one. The anchor is the only one who decides: it
// reads every stream on this one thread, so two answers are never given for one handoff. After
// `handoff` (epoch e of the stream, e' the epoch the ack handed out) it accepts EITHER the old
// stream's `resume` OR an `attach` for e', whichever it reads first, and rejects the other. The
// source resumes its frozen copy only after `resumed`; the target lets its restored copy run only
// after `attached`; whoever is rejected kills its copy. So there are never two running copies.
//
//   resume wins                              attach wins
//   source: handoff ──► ack(e')              source: handoff ──► ack(e')
//   (the target fails or is slow)            target: attach(e') ──► attached; the source's stream
//   source: resume ──► resumed (link live)           gets `rejected` and is retired
//   target: attach(e') ──► rejected:         source: resume ──► (nobody reads it: retired) or
//           not being moved; it dies                 finish_handoff: the source copy dies
//
//   old stream breaks after handoff          attach before any handoff, or for another epoch
//   (source node died mid-move):             (a stale target of an earlier, cancelled move:
//   wait up to handoff_wait_ms past its      epochs are never handed out twice)
//   last sign of life for attach(e');        ──► rejected
//   none ──► the job is lost, exit 252
//
// The offsets must also match exactly: an attach whose stdout/stderr/stdin/signal counts differ
// from ours would lose or repeat bytes, so it is rejected rather than accepted.
void Reader::decide_attach(Conn& c, const AttachMsg& a) {
  std::string why;
  if (sh_.link != Link::kHandedOff)
    why = fmt::format("job {} is not being handed off", sh_.job_id);
  else if (a.id != sh_.job_id)
    why = fmt::format("this anchor runs job {}, not {}", sh_.job_id, a.id);
  else if (a.epoch != handed_epoch_)
    why = fmt::format("epoch {} is not the epoch {} of the current handoff", a.epoch, handed_epoch_);
  else if (a.at.stdout_bytes != stdout_recv_ || a.at.stderr_bytes != stderr_recv_ ||
           a.at.stdin_bytes != sh_.stdin_sent || a.at.signals != sh_.signals_sent)
    why = fmt::format("offsets differ: the shepherd has {}, the anchor stdout {}, stderr {}, stdin {}, signals {}",
                      describe(a.at), stdout_recv_, stderr_recv_, sh_.stdin_sent, sh_.signals_sent);
  if (!why.empty()) {
    reject(c, why);
    return;
  }
  {
    std::lock_guard lk(sh_.mu);
    UniqueFd old = std::move(sh_.sock);
    sh_.sock = std::move(c.fd);
    (void)set_nonblocking(sh_.sock.get(), false);
    set_stream_liveness(sh_.sock.get());
    if (!sh_.send_frame_locked(FrameType::kAttached, encode(AttachedMsg{sh_.stdin_sent, sh_.signals_sent}))) {
      // The new stream broke at once: the handoff still stands; another attach may come.
      sh_.sock = std::move(old);
      return;
    }
    if (old.valid()) {
      std::vector<char> f;
      append_frame(f, FrameType::kRejected,
                   encode_message(fmt::format("job {} now runs on node {}", sh_.job_id, a.node)));
      (void)::send(old.get(), f.data(), f.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      retire(std::move(old));
    }
    sh_.link = Link::kStreaming;
    sh_.credit = 0;  // the new shepherd grants its window
    sh_.node = a.node;
    resend_closed_locked();
    resend_window_locked();
    for (const auto& s : std::exchange(sh_.held_signals, {})) sh_.signal_locked(s.signo, s.flags);
  }
  in_.clear();
  if (c.in.size() > 0) in_.append(c.in.data(), c.in.size());
  quiet_since_ = now_ms();
  if (sh_.opt.verbose)
    sh_.say(fmt::format("osmo run: job {} moved from node {} to node {}", sh_.job_id,
                        moving_from_.empty() ? "?" : moving_from_, a.node));
}

void Reader::reject(Conn& c, const std::string& why) {
  std::vector<char> f;
  append_frame(f, FrameType::kRejected, encode_message(why));
  (void)set_nonblocking(c.fd.get(), true);
  (void)::send(c.fd.get(), f.data(), f.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  retire(std::move(c.fd));
}

void Reader::retire(UniqueFd fd) {
  if (!fd.valid()) return;
  ::shutdown(fd.get(), SHUT_WR);
  (void)set_nonblocking(fd.get(), true);
  Conn r;
  r.fd = std::move(fd);
  r.until_ms = now_ms() + kRetiredLingerMs;
  retired_.push_back(std::move(r));
}

void Reader::read_candidate(Conn& c) {
  char* t = c.in.tail(16 * 1024);
  const ssize_t n = ::read(c.fd.get(), t, 16 * 1024);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    c.fd.reset();
    return;
  }
  c.in.commit(static_cast<std::size_t>(n));
  if (c.in.size() < kFrameHeaderBytes) return;
  auto h = decode_header(c.in.data());
  if (!h.ok() || h->type != FrameType::kAttach) {
    reject(c, h.ok() ? fmt::format("a {} frame where attach was expected", frame_name(h->type)) : h.error().message);
    return;
  }
  if (c.in.size() < kFrameHeaderBytes + h->length) return;
  auto a = decode_attach(std::string_view(c.in.data() + kFrameHeaderBytes, h->length));
  c.in.consume(kFrameHeaderBytes + h->length);
  if (!a.ok()) {
    reject(c, a.error().message);
    return;
  }
  decide_attach(c, *a);
}

// Lines {"attach": {...}} from the home daemon, each with the attaching shepherd's stream.
void Reader::read_control() {
  char buf[4096];
  platform::ReceivedFds fds;
  const ssize_t n = platform::recv_with_fds(control_fd_, buf, sizeof buf, &fds, MSG_DONTWAIT);
  if (n < 0 && errno == EAGAIN) return;
  for (std::size_t i = 0; i < fds.count; ++i) control_fds_.push_back(fds.take(i));
  if (n <= 0) {
    // The daemon went away (a restart): re-register when it is back.
    owned_control_.reset();
    control_fd_ = -1;
    control_buf_.clear();
    control_fds_.clear();
    next_reregister_ms_ = now_ms();
    return;
  }
  control_buf_.append(buf, static_cast<std::size_t>(n));
  for (std::size_t nl; (nl = control_buf_.find('\n')) != std::string::npos;) {
    const std::string line = control_buf_.substr(0, nl);
    control_buf_.erase(0, nl + 1);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("signal") && j["signal"].is_number_integer()) {
      // `osmo kill`, routed by the home daemon: like a kill(2) of ours, to the job process.
      const int signo = j["signal"].get<int>();
      if (signo > 0 && signo < NSIG) {
        std::lock_guard lk(sh_.mu);
        sh_.signal_locked(static_cast<std::uint32_t>(signo), 0);
      }
      continue;
    }
    if (!j.is_object() || !j.contains("attach") || control_fds_.empty()) continue;
    Conn c;
    c.fd = std::move(control_fds_.front());
    control_fds_.erase(control_fds_.begin());
    c.until_ms = now_ms() + kAttachFrameWaitMs;
    if (candidates_.size() >= kMaxCandidates) {
      reject(c, "too many shepherds attaching at once");
      continue;
    }
    (void)set_nonblocking(c.fd.get(), true);
    candidates_.push_back(std::move(c));
  }
  if (control_buf_.size() > 64 * 1024) control_buf_.clear();  // not our protocol: drop it
}

bool Reader::check_timers() {
  const std::int64_t now = now_ms();
  switch (sh_.link) {
    case Link::kStreaming:
      if (sh_.sock.valid() && now - quiet_since_ >= kAnchorDeadAfterMs) {
        sh_.finish(kExitNodeDied,
                   fmt::format("osmo run: {} stopped answering (silent for {} s); job {} is lost",
                               sh_.node_name(), kAnchorDeadAfterMs / 1000,
                               sh_.job_id.empty() ? "?" : sh_.job_id));
        return false;
      }
      break;
    case Link::kMigrating:
      if (now - quiet_since_ >= sh_.opt.handoff_wait_ms) {
        sh_.finish(kExitNodeDied,
                   fmt::format("osmo run: {} stopped answering while moving job {} (silent for {} s); "
                               "job {} is lost", sh_.node_name(), sh_.job_id, sh_.opt.handoff_wait_ms / 1000,
                               sh_.job_id));
        return false;
      }
      break;
    case Link::kHandedOff:
      if (now - handoff_since_ >= sh_.opt.handoff_wait_ms) {
        sh_.finish(kExitNodeDied,
                   fmt::format("osmo run: job {} left {} and no node took it over within {} s; job {} is lost",
                               sh_.job_id, sh_.node_name(), sh_.opt.handoff_wait_ms / 1000, sh_.job_id));
        return false;
      }
      break;
  }
  for (auto& c : candidates_)
    if (now >= c.until_ms) reject(c, "no attach frame in time");
  for (auto& r : retired_)
    if (now >= r.until_ms) r.fd.reset();
  std::erase_if(candidates_, [](const Conn& c) { return !c.fd.valid(); });
  std::erase_if(retired_, [](const Conn& c) { return !c.fd.valid(); });
  if (control_fd_ < 0 && sh_.opt.reregister && now >= next_reregister_ms_) {
    next_reregister_ms_ = now + 1000;
    owned_control_ = sh_.opt.reregister();
    control_fd_ = owned_control_.get();
  }
  return true;
}

void Reader::run() {
  for (;;) {
    std::vector<pollfd> pfd;
    const bool have_current = sh_.sock.valid();
    if (have_current) pfd.push_back({sh_.sock.get(), POLLIN, 0});
    const std::size_t first_candidate = pfd.size();
    for (const auto& c : candidates_) pfd.push_back({c.fd.get(), POLLIN, 0});
    const std::size_t first_retired = pfd.size();
    for (const auto& r : retired_) pfd.push_back({r.fd.get(), POLLIN, 0});
    const std::size_t i_control = pfd.size();
    if (control_fd_ >= 0) pfd.push_back({control_fd_, POLLIN, 0});
    const int pr = ::poll(pfd.data(), pfd.size(), 1000);
    if (pr < 0 && errno != EINTR) {
      sh_.finish(kExitNodeDied, fmt::format("osmo run: relay stream poll failed: {}", std::strerror(errno)));
      return;
    }
    if (pr > 0) {
      if (have_current && pfd[0].revents != 0 && !read_current()) return;
      for (std::size_t i = 0; i < candidates_.size() && first_candidate + i < first_retired; ++i)
        if (pfd[first_candidate + i].revents != 0 && candidates_[i].fd.valid()) read_candidate(candidates_[i]);
      for (std::size_t i = 0; first_retired + i < i_control && i < retired_.size(); ++i) {
        if (pfd[first_retired + i].revents == 0) continue;
        char scratch[4096];
        const ssize_t n = ::read(retired_[i].fd.get(), scratch, sizeof scratch);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) retired_[i].fd.reset();
      }
      if (control_fd_ >= 0 && i_control < pfd.size() && pfd[i_control].fd == control_fd_ &&
          pfd[i_control].revents != 0)
        read_control();
    }
    if (!check_timers()) return;
  }
}

void send_signal(Shared& sh, int signo, bool group) {
  std::lock_guard lk(sh.mu);
  sh.signal_locked(static_cast<std::uint32_t>(signo), group ? kSignalToGroup : 0);
}

// The caller's window size, for the job's pty (after SIGWINCH, and after a stop: it may have
// changed meanwhile). Not sent during a move (nothing is, but heartbeats).
void send_window_size(Shared& sh, int term_fd) {
  winsize w{};
  if (term_fd < 0 || ::ioctl(term_fd, TIOCGWINSZ, &w) != 0 || w.ws_row == 0 || w.ws_col == 0) return;
  std::lock_guard lk(sh.mu);
  if (sh.link != Link::kStreaming) return;
  const WindowSize ws{w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel};
  (void)sh.send_frame_locked(FrameType::kWindowSize, window_size_payload(ws).view());
}

}  // namespace

int run_anchor(UniqueFd stream, const AnchorOptions& options) {
  auto sh = std::make_shared<Shared>();
  sh->opt = options;
  sh->node = options.node;
  sh->sock = std::move(stream);
  sh->out_is_pipe = is_pipe(options.out_fd);
  sh->err_is_pipe = is_pipe(options.err_fd);
  // EPIPE on our stdout is handled (the job gets the SIGPIPE, as it would locally); the signal
  // itself would kill us and leave the job's status unknown.
  ::signal(SIGPIPE, SIG_IGN);
  (void)set_nonblocking(sh->sock.get(), false);
  set_stream_liveness(sh->sock.get());
  sh->done_event.reset(::eventfd(0, EFD_CLOEXEC));
  if (!sh->done_event.valid()) {
    (void)write_all(options.err_fd, fmt::format("osmo run: eventfd: {}\n", std::strerror(errno)));
    return kExitProtocol;
  }

  // Block the forwarded signals before starting threads, so that all of them inherit the mask
  // and every such signal lands in our signalfd.
  sigset_t fwd, old;
  sigemptyset(&fwd);
  for (int s : kForwardedSignals) sigaddset(&fwd, s);
  if (options.term_fd >= 0) sigaddset(&fwd, SIGWINCH);
  for (int s : options.extra_signals) sigaddset(&fwd, s);
  UniqueFd sfd;
  if (options.forward_signals) {
    pthread_sigmask(SIG_BLOCK, &fwd, &old);
    sfd.reset(::signalfd(-1, &fwd, SFD_CLOEXEC));
  }
  // A job with a pty that reads our terminal: the terminal is raw until we return (the guard
  // restores it on every path out of here; `osmo run` killed outright cannot, as with ssh).
  RawTerminal terminal(options.raw_fd, options.raw_output);
  auto enter_raw = [&] {
    if (options.raw_fd < 0) return;
    if (auto st = terminal.enter(); !st.ok())
      (void)write_all(options.err_fd, fmt::format("osmo run: {}\n", st.error().str()));
    sh->raw = terminal.raw();
  };
  auto leave_raw = [&] {
    terminal.leave();
    sh->raw = false;
  };
  enter_raw();

  std::thread reader([sh] { Reader(*sh).run(); });
  std::thread(stdin_loop, sh).detach();

  pollfd pfd[2] = {{sh->done_event.get(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
  while (!sh->finished.load()) {
    if (::poll(pfd, sfd.valid() ? 2 : 1, -1) < 0 && errno != EINTR) break;
    if (!sfd.valid() || (pfd[1].revents & POLLIN) == 0) continue;
    signalfd_siginfo si{};
    if (::read(sfd.get(), &si, sizeof si) != static_cast<ssize_t>(sizeof si)) continue;
    const int signo = static_cast<int>(si.ssi_signo);
    // A signal the terminal generated (Ctrl-C, Ctrl-\) goes to the job's whole process group, as
    // the terminal would have done; one sent with kill(2) goes to the job process only.
    const bool from_tty = si.ssi_code == SI_KERNEL;
    if (signo == SIGWINCH) {
      send_window_size(*sh, options.term_fd);
    } else if (signo == SIGTSTP) {
      // Ctrl-Z (or, with a raw terminal, a SIGTSTP from elsewhere: Ctrl-Z is then a byte for the
      // job's pty): stop the job (SIGSTOP: SIGTSTP could be ignored there), give the terminal
      // back as we found it, then stop ourselves so the shell sees a stopped job.
      send_signal(*sh, SIGSTOP, true);
      leave_raw();
      ::kill(::getpid(), SIGSTOP);
    } else if (signo == SIGCONT) {
      // `fg` (or `bg`: then taking the terminal stops us again with SIGTTOU, as it should).
      enter_raw();
      send_window_size(*sh, options.term_fd);
      send_signal(*sh, SIGCONT, true);
    } else {
      send_signal(*sh, signo, from_tty);
    }
  }
  reader.join();
  {
    // Let the shepherd see the end at once, even while the stdin thread still holds the fd.
    std::lock_guard lk(sh->mu);
    if (sh->sock.valid()) ::shutdown(sh->sock.get(), SHUT_RDWR);
  }
  leave_raw();
  if (!sh->message.empty()) (void)write_all(options.err_fd, sh->message + "\n");
  if (options.forward_signals) pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return sh->exit_code;
}

}  // namespace osmo::run
