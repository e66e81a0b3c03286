// SPDX-License-Identifier: GPL-2.0-or-later
// The pump of an encrypted peer stream (see peer_pump.hpp). The pump process is forked from a
// process that has other threads (the daemon), without exec: between fork and _exit it uses only
// system calls and libsodium's AEAD functions (no allocation, no locks, no logging), its buffers
// are mapped with mmap, and every fd but its two sockets is closed at once.
#include "daemon/peer_pump.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

namespace osmo::daemon {
namespace {

using wire::ChannelFrame;
using wire::kChannelHeaderBytes;
using wire::kChannelTagBytes;
using wire::kMaxChannelFrameBytes;
using wire::kMaxChannelPayload;

// Same liveness as run::set_stream_liveness gives a relay's TCP stream (idle 2 s, a probe every
// 1 s, dead after 3): the service's end is a local socket now, so the pump sets it on the TCP one.
void set_liveness(int fd) {
  const int on = 1, idle_s = 2, intvl_s = 1, cnt = 3;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s, sizeof intvl_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// A buffer of one whole frame, mapped rather than allocated (see the top of the file).
struct FrameBuffer {
  std::uint8_t* p = nullptr;
  FrameBuffer() {
    void* m = ::mmap(nullptr, kMaxChannelFrameBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) p = static_cast<std::uint8_t*>(m);
  }
  ~FrameBuffer() {
    if (p != nullptr) ::munmap(p, kMaxChannelFrameBytes);
  }
  FrameBuffer(const FrameBuffer&) = delete;
  FrameBuffer& operator=(const FrameBuffer&) = delete;
};

bool transient(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

}  // namespace

PumpCounters& pump_counters() {
  // Made once, before this process forks its first pump; the pumps inherit the shared mapping.
  static PumpCounters* counters = [] {
    void* m = ::mmap(nullptr, sizeof(PumpCounters), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return new PumpCounters();  // then pumps count in their own copy only
    return new (m) PumpCounters();
  }();
  return *counters;
}

const char* to_string(PumpEnd e) {
  switch (e) {
    case PumpEnd::kClean:
      return "clean";
    case PumpEnd::kRefused:
      return "refused";
    case PumpEnd::kCut:
      return "cut";
    case PumpEnd::kAppGone:
      return "app_gone";
  }
  return "?";
}

// Two independent directions in one poll loop, each with one frame of buffer:
//   out: read plain bytes from `inner` (only when the previous frame is sent), seal, send on tcp;
//        EOF on `inner` becomes an end frame, then shutdown(tcp, SHUT_WR).
//   in:  read one frame from tcp (header, then exactly the rest: no byte of the next frame is
//        read ahead), check and open it, write the plaintext to `inner` (only then read the
//        next); an end frame becomes shutdown(inner, SHUT_WR).
// Back-pressure is thus end to end: a service that stops reading stops the pump's reads of TCP.
PumpEnd run_pump(int tcp, int inner, const ChannelKeys& keys, PumpCounters& counters) {
  wire::ChannelSealer sealer(keys.send, keys.suite, keys.send_seq);
  wire::ChannelOpener opener(keys.recv, keys.suite, keys.recv_seq);
  return run_pump(tcp, inner, sealer, opener, counters);
}

PumpEnd run_pump(int tcp, int inner, wire::ChannelSealer& sealer, wire::ChannelOpener& opener,
                 PumpCounters& counters) {
  FrameBuffer out, in;
  auto finish = [&](PumpEnd e) {
    ::shutdown(tcp, SHUT_RDWR);
    ::shutdown(inner, SHUT_RDWR);
    if (e == PumpEnd::kRefused) ++counters.frames_refused;
    if (e == PumpEnd::kCut) ++counters.streams_cut;
    return e;
  };
  if (out.p == nullptr || in.p == nullptr) return finish(PumpEnd::kAppGone);
  ++counters.streams;
  set_nonblocking(tcp);
  set_nonblocking(inner);
  set_liveness(tcp);

  std::size_t out_len = 0, out_off = 0;  // the sealed frame being sent
  bool out_is_end = false, inner_eof = false, end_sent = false;
  std::size_t in_have = 0;  // bytes of the current frame read so far
  std::uint32_t in_n = 0;   // its payload length, once the header is in
  ChannelFrame in_type = ChannelFrame::kData;
  std::size_t plain_off = 0, plain_len = 0;  // opened bytes not yet written to inner
  bool end_received = false, app_closed = false;

  for (;;) {
    if (end_sent && (end_received || app_closed) && plain_len == 0) return finish(PumpEnd::kClean);
    pollfd p[2] = {{inner, 0, 0}, {tcp, 0, 0}};
    if (out_len == 0 && !inner_eof) p[0].events |= POLLIN;
    if (plain_len > 0) p[0].events |= POLLOUT;
    if (plain_len == 0 && !end_received) p[1].events |= POLLIN;
    if (out_len > 0) p[1].events |= POLLOUT;
    // A socket we neither read nor write now is left out of the poll: its POLLHUP (always
    // reported) would otherwise spin the loop while the other direction waits. The exception is
    // the service's end after its EOF: its POLLHUP then says the service closed it entirely.
    if (p[0].events == 0 && !(inner_eof && !app_closed)) p[0].fd = -1;
    if (p[1].events == 0) p[1].fd = -1;
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return finish(PumpEnd::kAppGone);
    }

    // Service -> peer.
    if (out_len == 0 && !inner_eof && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t r = ::read(inner, out.p + kChannelHeaderBytes, kMaxChannelPayload);
      if (r > 0) {
        out_len = sealer.seal(ChannelFrame::kData, out.p, static_cast<std::uint32_t>(r));
        out_off = 0;
        out_is_end = false;
        counters.bytes_sealed += static_cast<std::uint64_t>(r);
      } else if (r == 0 || (r < 0 && errno == ECONNRESET)) {
        inner_eof = true;  // the service shut or closed its end: the peer reads EOF after our data
        out_len = sealer.seal(ChannelFrame::kEnd, out.p, 0);
        out_off = 0;
        out_is_end = true;
      } else if (!transient(errno)) {
        return finish(PumpEnd::kAppGone);
      }
    }
    if (out_len > 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = ::send(tcp, out.p + out_off, out_len - out_off, MSG_NOSIGNAL);
      if (w > 0) {
        out_off += static_cast<std::size_t>(w);
        if (out_off == out_len) {
          out_len = out_off = 0;
          if (out_is_end) {
            end_sent = true;
            ::shutdown(tcp, SHUT_WR);
          }
        }
      } else if (w < 0 && !transient(errno)) {
        return finish(PumpEnd::kCut);
      }
    }

    // Peer -> service.
    if (plain_len == 0 && !end_received && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      const std::size_t want = in_have < kChannelHeaderBytes
                                   ? kChannelHeaderBytes
                                   : kChannelHeaderBytes + in_n + kChannelTagBytes;
      const ssize_t r = ::read(tcp, in.p + in_have, want - in_have);
      if (r == 0) return finish(PumpEnd::kCut);  // EOF before an end frame: truncated
      if (r < 0) {
        if (!transient(errno)) return finish(PumpEnd::kCut);
      } else {
        in_have += static_cast<std::size_t>(r);
        if (in_have == kChannelHeaderBytes) {
          if (!opener.check_header(in.p, &in_n, &in_type).ok()) return finish(PumpEnd::kRefused);
        }
        if (in_have == kChannelHeaderBytes + in_n + kChannelTagBytes) {
          if (!opener.open(in.p, in_n).ok()) return finish(PumpEnd::kRefused);
          in_have = 0;
          if (in_type == ChannelFrame::kEnd) {
            end_received = true;
            ::shutdown(inner, SHUT_WR);
          } else {
            plain_off = 0;
            plain_len = in_n;
            counters.bytes_opened += in_n;
          }
        }
      }
    }
    if (plain_len > 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w =
          ::send(inner, in.p + kChannelHeaderBytes + plain_off, plain_len, MSG_NOSIGNAL);
      if (w > 0) {
        plain_off += static_cast<std::size_t>(w);
        plain_len -= static_cast<std::size_t>(w);
      } else if (w < 0 && !transient(errno)) {
        // The service closed its end with data still coming: nobody will read the rest.
        plain_len = 0;
        app_closed = true;  // its read side reports EOF next, which sends our end frame
      }
    }
    // The service closed its end entirely (not a half close): once our end frame is out, the
    // stream is over whatever the peer still sends.
    if ((p[0].revents & POLLHUP) && inner_eof) app_closed = true;
  }
}

Result<UniqueFd> start_pump(UniqueFd tcp, ChannelKeys keys) {
  PumpCounters& counters = pump_counters();  // the shared mapping exists before the fork
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    sodium_memzero(&keys, sizeof keys);
    return errno_error("peer stream: socketpair for the pump");
  }
  UniqueFd app(sv[0]), inner(sv[1]);
  // Made before the fork: their set-up may take locks (OpenSSL's cipher lookup) that another
  // thread of this process could hold at the moment of the fork.
  wire::ChannelSealer sealer(keys.send, keys.suite, keys.send_seq);
  wire::ChannelOpener opener(keys.recv, keys.suite, keys.recv_seq);
  const pid_t child = ::fork();
  if (child < 0) {
    sodium_memzero(&keys, sizeof keys);
    return errno_error("peer stream: fork of the pump");
  }
  if (child == 0) {
    // Intermediate child: fork the pump and exit, so that the pump is nobody's child to reap.
    const pid_t pump = ::fork();
    if (pump != 0) ::_exit(pump < 0 ? 1 : 0);
    ::setsid();  // out of the daemon's session and process group: a signal to those is not ours
    ::prctl(PR_SET_NAME, "osmo-peer-pump", 0, 0, 0);
    // Keep only the two sockets (moved to 3 and 4) and stdio pointed at /dev/null: another
    // stream's fd held here would keep that stream open after its owner closed it.
    const int t = ::fcntl(tcp.get(), F_DUPFD, 10), i = ::fcntl(inner.get(), F_DUPFD, 10);
    if (t < 0 || i < 0 || ::dup2(t, 3) < 0 || ::dup2(i, 4) < 0) ::_exit(2);
    const int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      ::dup2(null_fd, 0);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
    }
    ::syscall(SYS_close_range, 5u, ~0u, 0u);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD})
      ::sigaction(s, &dfl, nullptr);
    (void)run_pump(3, 4, sealer, opener, counters);
    sodium_memzero(&keys, sizeof keys);
    ::_exit(0);
  }
  sodium_memzero(&keys, sizeof keys);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error("peer stream: the pump could not be started (fork failed)");
  return app;
}

}  // namespace osmo::daemon
