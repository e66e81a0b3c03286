// SPDX-License-Identifier: GPL-2.0-or-later
// The home anchor (see anchor.hpp).
#include "run/anchor.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

#include "run/byte_buffer.hpp"
#include "run/exit_status.hpp"
#include "run/fd_util.hpp"
#include "run/frame.hpp"

namespace osmo::run {

namespace {

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGTSTP, SIGCONT};

std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// State shared by the three threads. The stdin thread may outlive run_anchor (it can be blocked
// in read() on a terminal), so it holds a shared_ptr.
struct Shared {
  AnchorOptions opt;
  UniqueFd sock;
  std::mutex send_mu;  // one frame at a time on the stream

  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t credit = 0;  // stdin bytes the shepherd will accept
  bool stop = false;

  UniqueFd done_event;       // written once when the outcome is known
  std::atomic<bool> finished{false};
  int exit_code = 0;         // valid once finished
  std::string message;       // one line for stderr, or empty
  std::string job_id;
  std::string node;

  // Sends one whole frame. Errors mean the stream is gone; the reader reports that.
  bool send(const std::vector<char>& frame) {
    std::lock_guard lk(send_mu);
    std::size_t off = 0;
    while (off < frame.size()) {
      const ssize_t n = ::send(sock.get(), frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      off += static_cast<std::size_t>(n);
    }
    return true;
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

  bool out_is_pipe = false;
  bool err_is_pipe = false;

  std::string node_name() const { return node.empty() ? "the node" : "node " + node; }
};

void stdin_loop(std::shared_ptr<Shared> sh) {
  std::unique_ptr<char[]> buf(new char[kFrameHeaderBytes + kMaxFramePayload]);
  for (;;) {
    std::uint64_t want = 0;
    {
      std::unique_lock lk(sh->mu);
      sh->cv.wait(lk, [&] { return sh->stop || sh->credit > 0; });
      if (sh->stop) return;
      want = std::min<std::uint64_t>(sh->credit, kMaxFramePayload);
    }
    const ssize_t n = ::read(sh->opt.in_fd, buf.get() + kFrameHeaderBytes, want);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // EOF, or a stdin that cannot be read (closed, EIO on a lost terminal): the job sees EOF.
      std::vector<char> f;
      append_frame(f, FrameType::kStdinEof);
      sh->send(f);
      return;
    }
    {
      std::lock_guard lk(sh->mu);
      sh->credit -= static_cast<std::uint64_t>(n);
    }
    encode_header(buf.get(), FrameType::kStdin, static_cast<std::uint32_t>(n));
    std::vector<char> f(buf.get(), buf.get() + kFrameHeaderBytes + n);
    if (!sh->send(f)) return;
  }
}

// Writes job output to one of our fds. When our reader is gone (EPIPE), tells the shepherd to
// close the job's end, so the job gets SIGPIPE as it would locally, and drops what still comes.
void deliver(Shared& sh, int fd, bool& closed, FrameType closed_frame, const char* p,
             std::size_t n) {
  if (closed) return;
  if (write_all(fd, std::string_view(p, n)).ok()) return;
  closed = true;
  std::vector<char> f;
  append_frame(f, closed_frame);
  sh.send(f);
}

bool is_pipe(int fd) {
  struct stat st{};
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

// Fast path for bulk output: when the buffer ends in the head of a large stdout/stderr frame and
// our output is a pipe, the rest of the payload moves from the socket into the pipe with splice(2)
// (no copy through user space). Returns false when the stream failed (finish() was called).
bool splice_rest_of_frame(Shared& sh, ByteBuffer& in, bool& out_closed, bool& err_closed) {
  constexpr std::size_t kSpliceMinBytes = 64 * 1024;
  if (in.size() < kFrameHeaderBytes) return true;
  auto h = decode_header(in.data());
  if (!h.ok() || (h->type != FrameType::kStdout && h->type != FrameType::kStderr)) return true;
  const bool to_out = h->type == FrameType::kStdout;
  const int fd = to_out ? sh.opt.out_fd : sh.opt.err_fd;
  bool& closed = to_out ? out_closed : err_closed;
  const std::size_t have = in.size() - kFrameHeaderBytes;
  std::size_t left = h->length - have;
  if (closed || left < kSpliceMinBytes || !(to_out ? sh.out_is_pipe : sh.err_is_pipe)) return true;
  const FrameType closed_frame = to_out ? FrameType::kStdoutClosed : FrameType::kStderrClosed;
  deliver(sh, fd, closed, closed_frame, in.data() + kFrameHeaderBytes, have);
  in.clear();
  char scratch[65536];
  while (left > 0) {
    const ssize_t m = closed ? ::read(sh.sock.get(), scratch, std::min(left, sizeof scratch))
                             : ::splice(sh.sock.get(), nullptr, fd, nullptr, left, SPLICE_F_MOVE);
    if (m > 0) {
      left -= static_cast<std::size_t>(m);
      continue;
    }
    if (m < 0 && errno == EINTR) continue;
    if (m < 0 && errno == EPIPE && !closed) {
      // Our reader is gone: tell the shepherd (the job gets SIGPIPE) and drop the rest.
      closed = true;
      std::vector<char> f;
      append_frame(f, closed_frame);
      sh.send(f);
      continue;
    }
    if (m < 0 && (errno == EINVAL || errno == ENOSYS) && !closed) {
      // Not spliceable after all (e.g. an O_APPEND pipe end): copy the rest.
      const ssize_t r = ::read(sh.sock.get(), scratch, std::min(left, sizeof scratch));
      if (r > 0) {
        deliver(sh, fd, closed, closed_frame, scratch, static_cast<std::size_t>(r));
        left -= static_cast<std::size_t>(r);
        continue;
      }
    }
    const std::string why = m == 0 ? "connection closed" : std::strerror(errno);
    sh.finish(kExitNodeDied, fmt::format("osmo run: lost {} while job {} was running ({})",
                                         sh.node_name(), sh.job_id, why));
    return false;
  }
  return true;
}

void reader_loop(Shared* sh) {
  ByteBuffer in(2 * (kFrameHeaderBytes + kMaxFramePayload));
  bool out_closed = false, err_closed = false, started = false;
  std::int64_t quiet_since = now_ms();
  for (;;) {
    pollfd p{sh->sock.get(), POLLIN, 0};
    const int pr = ::poll(&p, 1, 1000);
    if (pr < 0 && errno != EINTR) {
      sh->finish(kExitNodeDied, fmt::format("osmo run: relay stream poll failed: {}", std::strerror(errno)));
      return;
    }
    if (pr <= 0) {
      if (now_ms() - quiet_since >= kAnchorDeadAfterMs) {
        sh->finish(kExitNodeDied,
                   fmt::format("osmo run: {} stopped answering (silent for {} s); job {} is lost",
                               sh->node_name(), kAnchorDeadAfterMs / 1000,
                               sh->job_id.empty() ? "?" : sh->job_id));
        return;
      }
      continue;
    }
    const std::size_t room = kFrameHeaderBytes + kMaxFramePayload;
    const ssize_t n = ::read(sh->sock.get(), in.tail(room), room);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      const std::string why = n == 0 ? "connection closed" : std::strerror(errno);
      sh->finish(kExitNodeDied,
                 started ? fmt::format("osmo run: lost {} while job {} was running ({})",
                                       sh->node_name(), sh->job_id, why)
                         : fmt::format("osmo run: {} closed the job stream before the job started ({})",
                                       sh->node_name(), why));
      return;
    }
    in.commit(static_cast<std::size_t>(n));
    while (in.size() >= kFrameHeaderBytes) {
      auto h = decode_header(in.data());
      if (!h.ok()) {
        sh->finish(kExitProtocol, "osmo run: " + h.error().message);
        return;
      }
      if (in.size() < kFrameHeaderBytes + h->length) break;
      const char* pl = in.data() + kFrameHeaderBytes;
      const std::string_view payload(pl, h->length);
      switch (h->type) {
        case FrameType::kStdout:
          deliver(*sh, sh->opt.out_fd, out_closed, FrameType::kStdoutClosed, pl, h->length);
          break;
        case FrameType::kStderr:
          deliver(*sh, sh->opt.err_fd, err_closed, FrameType::kStderrClosed, pl, h->length);
          break;
        case FrameType::kStdoutEof:
        case FrameType::kStderrEof:
        case FrameType::kHeartbeat: break;
        case FrameType::kCredit:
          if (h->length == 4) {
            {
              std::lock_guard lk(sh->mu);
              sh->credit += read_u32(pl);
            }
            sh->cv.notify_all();
          }
          break;
        case FrameType::kStarted: {
          auto j = nlohmann::json::parse(payload, nullptr, false);
          if (j.is_object()) {
            sh->job_id = j.value("id", "");
            sh->node = j.value("node", sh->node);
            if (sh->opt.verbose)
              (void)write_all(sh->opt.err_fd,
                              fmt::format("osmo run: job {} runs on {} as pid {}\n", sh->job_id,
                                          sh->node, j.value("pid", 0)));
          }
          started = true;
          break;
        }
        case FrameType::kNotice:
          (void)write_all(sh->opt.err_fd, fmt::format("osmo run: {}\n", payload));
          break;
        case FrameType::kRefused: {
          auto j = nlohmann::json::parse(payload, nullptr, false);
          const std::string msg = j.is_object() ? j.value("message", "") : std::string(payload);
          sh->finish(kExitRefused, "osmo run: " + msg);
          return;
        }
        case FrameType::kExit: {
          if (h->length != 8) {
            sh->finish(kExitProtocol, "osmo run: malformed exit frame");
            return;
          }
          const std::uint32_t kind = read_u32(pl), value = read_u32(pl + 4);
          const int code = kind == kExitSignal ? kExitSignalBase + static_cast<int>(value)
                                               : static_cast<int>(value & 0xff);
          std::string msg;
          if (sh->opt.verbose)
            msg = kind == kExitSignal
                      ? fmt::format("osmo run: job {} was killed by signal {} ({})", sh->job_id,
                                    value, strsignal(static_cast<int>(value)))
                      : fmt::format("osmo run: job {} exited with status {}", sh->job_id, value);
          sh->finish(code, msg);
          return;
        }
        default:
          sh->finish(kExitProtocol, fmt::format("osmo run: the node sent a {} frame, which only "
                                                "an anchor sends", frame_name(h->type)));
          return;
      }
      in.consume(kFrameHeaderBytes + h->length);
    }
    quiet_since = now_ms();
    if (!splice_rest_of_frame(*sh, in, out_closed, err_closed)) return;
  }
}

void send_signal(Shared& sh, int signo, bool group) {
  std::vector<char> f;
  append_u32_pair_frame(f, FrameType::kSignal, static_cast<std::uint32_t>(signo),
                        group ? kSignalToGroup : 0);
  sh.send(f);
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
  UniqueFd sfd;
  if (options.forward_signals) {
    pthread_sigmask(SIG_BLOCK, &fwd, &old);
    sfd.reset(::signalfd(-1, &fwd, SFD_CLOEXEC));
  }

  std::thread reader(reader_loop, sh.get());
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
    if (signo == SIGTSTP) {
      // Ctrl-Z: stop the job (SIGSTOP: a remote job has no terminal, and SIGTSTP could be
      // ignored there), then stop ourselves so the shell sees a stopped job. `fg` sends SIGCONT.
      send_signal(*sh, SIGSTOP, true);
      ::kill(::getpid(), SIGSTOP);
    } else if (signo == SIGCONT) {
      send_signal(*sh, SIGCONT, true);
    } else {
      send_signal(*sh, signo, from_tty);
    }
  }
  reader.join();
  // Let the shepherd see the end at once, even while the stdin thread still holds the fd.
  ::shutdown(sh->sock.get(), SHUT_RDWR);
  if (!sh->message.empty()) (void)write_all(options.err_fd, sh->message + "\n");
  if (options.forward_signals) pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return sh->exit_code;
}

}  // namespace osmo::run
