// SPDX-License-Identifier: GPL-2.0-or-later
// The baseline of bench/migrate: a plain TCP copy of SIZE bytes from one testbed node's memory
// into another's, the floor that a stop-and-copy migration of a SIZE-byte job is compared with.
//
//   recv PORT SIZE [--count N] [--fresh]    listens on PORT, takes N copies one after the other
//   send HOST PORT SIZE [--count N]          fills SIZE bytes as the job does, sends them N times
//
// Per copy (one connection):
//   sender                         receiver
//   connect ───────────────────►   accept                  t_connect
//           ◄─────────────── "g"   (ready, buffer in place)
//   write SIZE bytes (64 MiB writes) ─► recv in place      t_first (first byte) ... t_last
//   shutdown(SHUT_WR) ─────────►   EOF expected; check every page against the pattern (untimed)
//           ◄──────────── "y"/"n"  verdict
// The receiver times the copy: connect to last byte (what a migration's total also includes:
// connection and handshake) and first byte to last byte (the stream alone). The bytes land in a
// SIZE-byte buffer faulted in beforehand, so the copy is network and memory bandwidth only; with
// --fresh each copy lands in newly mapped memory instead, and pays for allocating it (as a restore
// must) inside the timing. Each copy prints one line; the last line is the best of N.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.hpp"
#include "modes.hpp"
#include "pattern.hpp"

namespace osmo::bench {
namespace {

constexpr std::size_t kIoChunk = 64ull << 20;  // large writes and reads: no per-call overhead
constexpr int kAcceptTimeoutMs = 120000;       // bounded: the sender may still be filling 4 GiB
constexpr int kIoTimeoutS = 60;                // no copy stalls this long on a working link
constexpr double kConnectRetryS = 30;
constexpr std::uint64_t kMaxCount = 100;

struct CopyArgs {
  std::string host;
  std::uint16_t port = 0;
  std::uint64_t size = 0;
  std::uint64_t count = 1;
  bool fresh = false;
};

// Positional arguments ([HOST] PORT SIZE) and the options --count N and --fresh (recv only), in
// any order.
Result<CopyArgs> parse_copy_args(int argc, char** argv, bool with_host, std::string_view usage) {
  CopyArgs a;
  std::vector<std::string_view> pos;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--count") {
      if (i + 1 >= argc) return make_error("--count needs a value");
      OSMO_ASSIGN_OR_RETURN(a.count, parse_count(argv[++i], "--count"));
      if (a.count == 0 || a.count > kMaxCount)
        return make_error("--count must be 1..{}, got {}", kMaxCount, a.count);
    } else if (arg == "--fresh" && !with_host) {
      a.fresh = true;
    } else if (arg.starts_with("--")) {
      return make_error("unknown option {}; usage: {}", arg, usage);
    } else {
      pos.push_back(arg);
    }
  }
  const std::size_t want = with_host ? 3 : 2;
  if (pos.size() != want) return make_error("usage: {}", usage);
  std::size_t i = 0;
  if (with_host) a.host = std::string(pos[i++]);
  OSMO_ASSIGN_OR_RETURN(std::uint64_t port, parse_count(pos[i++], "PORT"));
  if (port == 0 || port > 65535) return make_error("PORT must be 1..65535, got {}", port);
  a.port = static_cast<std::uint16_t>(port);
  OSMO_ASSIGN_OR_RETURN(a.size, parse_size(pos[i]));
  const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  if (a.size % page != 0)
    return make_error("SIZE {} is not a multiple of the page size {}", a.size, page);
  return a;
}

Status set_io_timeout(int fd) {
  timeval tv{};
  tv.tv_sec = kIoTimeoutS;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
    return errno_error("setsockopt SO_RCVTIMEO/SO_SNDTIMEO on fd {}", fd);
  return ok_status();
}

Status send_byte(int fd, char c, const char* what) {
  if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) return errno_error("sending the {} byte", what);
  return ok_status();
}

Result<char> recv_byte(int fd, const char* what) {
  char c = 0;
  const ssize_t n = recv(fd, &c, 1, 0);
  if (n == 1) return c;
  if (n == 0) return make_error("connection closed before the {} byte", what);
  return errno_error("waiting for the {} byte", what);
}

// Checks every page of `buf` against generation 0 of the pattern (what `send` filled).
bool pattern_intact(const Mapping& buf) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t words = page / sizeof(std::uint64_t);
  std::uint64_t fold = 0;
  for (std::uint64_t p = 0; p < buf.size() / page; ++p)
    if (check_page(buf.words() + p * words, words, p, 0, fold) != words) return false;
  return true;
}

struct CopyTimes {
  double connect_to_last_s = 0;
  double first_to_last_s = 0;
};

// One copy on an accepted connection, into `buf`.
Result<CopyTimes> receive_one(int fd, const Mapping& buf, double t_connect) {
  OSMO_TRY(set_io_timeout(fd));
  OSMO_TRY(send_byte(fd, 'g', "go"));
  std::uint64_t got = 0;
  double t_first = 0;
  while (got < buf.size()) {
    const std::size_t want = std::min<std::uint64_t>(kIoChunk, buf.size() - got);
    const ssize_t n = recv(fd, buf.bytes() + got, want, 0);
    if (n == 0)
      return make_error("the sender closed the connection after {} of {} bytes", got, buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("recv after {} of {} bytes", got, buf.size());
    }
    if (got == 0) t_first = now_s();
    got += static_cast<std::uint64_t>(n);
  }
  const double t_last = now_s();
  char extra = 0;
  const ssize_t n = recv(fd, &extra, 1, 0);
  if (n != 0)
    return n > 0 ? make_error("the sender sent more than {} bytes", buf.size())
                 : errno_error("waiting for the sender's end after {} bytes", buf.size());
  const bool intact = pattern_intact(buf);
  OSMO_TRY(send_byte(fd, intact ? 'y' : 'n', "verdict"));
  if (!intact) return make_error("the {} bytes received differ from what was sent", buf.size());
  return CopyTimes{t_last - t_connect, t_last - t_first};
}

Result<UniqueFd> listen_on(std::uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket(AF_INET, SOCK_STREAM)");
  const int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    return errno_error("setsockopt SO_REUSEADDR");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return errno_error("bind to 0.0.0.0:{}", port);
  if (listen(fd.get(), 4) != 0) return errno_error("listen on port {}", port);
  return fd;
}

Status run_receiver(const CopyArgs& a) {
  OSMO_ASSIGN_OR_RETURN(UniqueFd lfd, listen_on(a.port));
  Mapping warm;
  if (!a.fresh) {
    OSMO_ASSIGN_OR_RETURN(warm, Mapping::anonymous(a.size, MAP_POPULATE));
  }
  CopyTimes best{1e30, 1e30};
  for (std::uint64_t run = 1; run <= a.count; ++run) {
    Mapping fresh;
    if (a.fresh) {
      OSMO_ASSIGN_OR_RETURN(fresh, Mapping::anonymous(a.size));
    }
    pollfd pfd{lfd.get(), POLLIN, 0};
    const int pr = poll(&pfd, 1, kAcceptTimeoutMs);
    if (pr < 0) return errno_error("poll on the listening socket (port {})", a.port);
    if (pr == 0)
      return make_error("no sender connected to port {} within {} s (copy {} of {})", a.port,
                        kAcceptTimeoutMs / 1000, run, a.count);
    UniqueFd fd(accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    const double t_connect = now_s();
    if (!fd) return errno_error("accept on port {}", a.port);
    auto t = receive_one(fd.get(), a.fresh ? fresh : warm, t_connect);
    if (!t) {
      Error e = t.take_error();
      e.message = fmt::format("copy {} of {}: {}", run, a.count, e.message);
      return e;
    }
    best.connect_to_last_s = std::min(best.connect_to_last_s, t->connect_to_last_s);
    best.first_to_last_s = std::min(best.first_to_last_s, t->first_to_last_s);
    std::printf("recv copy=%" PRIu64 " bytes=%" PRIu64
                " connect_to_last_ms=%.1f first_to_last_ms=%.1f gb_per_s=%.2f memory=%s "
                "verified=yes\n",
                run, a.size, t->connect_to_last_s * 1e3, t->first_to_last_s * 1e3,
                static_cast<double>(a.size) / t->first_to_last_s / 1e9,
                a.fresh ? "fresh" : "prefaulted");
    std::fflush(stdout);
  }
  std::printf("recv best_of=%" PRIu64 " bytes=%" PRIu64
              " connect_to_last_ms=%.1f first_to_last_ms=%.1f gb_per_s=%.2f memory=%s\n",
              a.count, a.size, best.connect_to_last_s * 1e3, best.first_to_last_s * 1e3,
              static_cast<double>(a.size) / best.first_to_last_s / 1e9,
              a.fresh ? "fresh" : "prefaulted");
  return ok_status();
}

Result<UniqueFd> connect_retrying(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0)
    return make_error("cannot resolve {}: {}", host, gai_strerror(rc));
  std::vector<char> addr(reinterpret_cast<char*>(res->ai_addr),
                         reinterpret_cast<char*>(res->ai_addr) + res->ai_addrlen);
  const socklen_t len = res->ai_addrlen;
  freeaddrinfo(res);
  // The receiver may still be faulting in its buffer: retry a refused connection for a while.
  const double until = now_s() + kConnectRetryS;
  for (;;) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return errno_error("socket(AF_INET, SOCK_STREAM)");
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(addr.data()), len) == 0) return fd;
    if (errno != ECONNREFUSED || now_s() > until)
      return errno_error("connect to {}:{}", host, port);
    usleep(50000);
  }
}

Status run_sender(const CopyArgs& a) {
  OSMO_ASSIGN_OR_RETURN(Mapping buf, Mapping::anonymous(a.size, MAP_POPULATE));
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t words = page / sizeof(std::uint64_t);
  for (std::uint64_t p = 0; p < a.size / page; ++p) fill_page(buf.words() + p * words, words, p, 0);
  for (std::uint64_t run = 1; run <= a.count; ++run) {
    OSMO_ASSIGN_OR_RETURN(UniqueFd fd, connect_retrying(a.host, a.port));
    OSMO_TRY(set_io_timeout(fd.get()));
    OSMO_ASSIGN_OR_RETURN(char go, recv_byte(fd.get(), "go"));
    if (go != 'g') return make_error("copy {}: the receiver sent {:#x} instead of go", run, go);
    const double t0 = now_s();
    std::uint64_t sent = 0;
    while (sent < a.size) {
      const std::size_t want = std::min<std::uint64_t>(kIoChunk, a.size - sent);
      const ssize_t n = send(fd.get(), buf.bytes() + sent, want, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_error("copy {}: send to {}:{} after {} of {} bytes", run, a.host, a.port, sent,
                           a.size);
      }
      sent += static_cast<std::uint64_t>(n);
    }
    const double t_written = now_s();
    if (shutdown(fd.get(), SHUT_WR) != 0) return errno_error("copy {}: shutdown", run);
    OSMO_ASSIGN_OR_RETURN(char verdict, recv_byte(fd.get(), "verdict"));
    if (verdict != 'y')
      return make_error("copy {}: the receiver found the bytes damaged (verdict {:#x})", run,
                        verdict);
    std::printf("send copy=%" PRIu64 " bytes=%" PRIu64 " go_to_last_write_ms=%.1f verified=yes\n",
                run, a.size, (t_written - t0) * 1e3);
    std::fflush(stdout);
  }
  return ok_status();
}

}  // namespace

int recv_main(int argc, char** argv) {
  auto a = parse_copy_args(argc, argv, false, "recv PORT SIZE [--count N] [--fresh]");
  if (!a) {
    std::fprintf(stderr, "recv: %s\n", a.error().str().c_str());
    return 2;
  }
  if (auto st = run_receiver(*a); !st) {
    std::fprintf(stderr, "recv: %s\n", st.error().str().c_str());
    return 1;
  }
  return 0;
}

int send_main(int argc, char** argv) {
  auto a = parse_copy_args(argc, argv, true, "send HOST PORT SIZE [--count N]");
  if (!a) {
    std::fprintf(stderr, "send: %s\n", a.error().str().c_str());
    return 2;
  }
  if (auto st = run_sender(*a); !st) {
    std::fprintf(stderr, "send: %s\n", st.error().str().c_str());
    return 1;
  }
  return 0;
}

}  // namespace osmo::bench
