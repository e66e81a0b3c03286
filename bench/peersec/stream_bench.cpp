// SPDX-License-Identifier: GPL-2.0-or-later
// bench/peersec: the cost of encrypting a peer stream, on loopback in one process (no testbed,
// no root): a PeerServer and dial_peer as the daemon uses them, once with peer encryption on and
// once off, alternating rounds.
//   open:  p50 of dial_peer + a one-byte echo (handshake, key exchange, the two pumps' forks)
//   bulk:  BYTES one way through the stream (the service end reads into a buffer), GB/s
// Prints the best of each and the ratio; never passes or fails on time.
// Usage: osmo-peersec-bench [--bytes N] [--opens N] [--rounds N]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "daemon/peer_link.hpp"
#include "wire/mac.hpp"

using namespace osmo;
using Clock = std::chrono::steady_clock;
using osmo::daemon::Json;

namespace {

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t bytes = 2ull << 30;
  int opens = 50, rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--bytes"))
      bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--opens"))
      opens = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds"))
      rounds = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--bytes N] [--opens N] [--rounds N]\n", argv[0]);
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::uint8_t secret[32];
  for (auto& b : secret) b = static_cast<std::uint8_t>(std::rand());
  const wire::Key key = wire::derive_key({secret, sizeof secret});
  const env::Endpoint ep{"127.0.0.1", free_port()};
  daemon::PeerServer server("server", key, Logger("bench", "peer"));
  server.add("echo", [](UniqueFd c, const Json&, const daemon::PeerContext&) {
    char b;
    if (::read(c.get(), &b, 1) == 1) (void)!::write(c.get(), &b, 1);
  });
  std::promise<double>* sink_done = nullptr;
  std::mutex mu;
  server.add("sink", [&](UniqueFd c, const Json&, const daemon::PeerContext&) {
    std::vector<char> buf(1 << 20);
    std::uint64_t got = 0;
    for (;;) {
      const ssize_t n = ::read(c.get(), buf.data(), buf.size());
      if (n <= 0) break;
      got += static_cast<std::uint64_t>(n);
    }
    std::lock_guard lk(mu);
    if (sink_done != nullptr) sink_done->set_value(static_cast<double>(got));
  });
  if (!server.start(ep).ok()) return 1;
  double best_open[2] = {1e9, 1e9}, best_gbps[2] = {0, 0};
  for (int r = 0; r < rounds; ++r) {
    for (int mode = 0; mode < 2; ++mode) {
      const bool enc = mode == 0;
      server.set_encryption(enc);
      std::vector<double> t;
      for (int i = 0; i < opens; ++i) {
        const auto t0 = Clock::now();
        auto c =
            daemon::dial_peer("client", key, ep, Json{{"service", "echo"}}, 5000, nullptr, enc);
        if (!c.ok()) return std::fprintf(stderr, "%s\n", c.error().str().c_str()), 1;
        char b = 'x';
        if (::write(c->get(), &b, 1) != 1 || ::read(c->get(), &b, 1) != 1) return 1;
        t.push_back(seconds_since(t0) * 1e3);
      }
      std::sort(t.begin(), t.end());
      best_open[mode] = std::min(best_open[mode], t[t.size() / 2]);
      std::promise<double> done;
      {
        std::lock_guard lk(mu);
        sink_done = &done;
      }
      auto c = daemon::dial_peer("client", key, ep, Json{{"service", "sink"}}, 5000, nullptr, enc);
      if (!c.ok()) return 1;
      std::vector<char> buf(1 << 20, 'a');
      const auto t0 = Clock::now();
      for (std::uint64_t sent = 0; sent < bytes;) {
        const ssize_t n =
            ::write(c->get(), buf.data(), std::min<std::uint64_t>(buf.size(), bytes - sent));
        if (n <= 0) return 1;
        sent += static_cast<std::uint64_t>(n);
      }
      ::shutdown(c->get(), SHUT_WR);
      const double got = done.get_future().get();
      const double s = seconds_since(t0);
      {
        std::lock_guard lk(mu);
        sink_done = nullptr;
      }
      if (got != static_cast<double>(bytes)) return std::fprintf(stderr, "short: %.0f\n", got), 1;
      best_gbps[mode] = std::max(best_gbps[mode], got / s / 1e9);
      std::printf("round %d %-9s open p50 %6.2f ms   bulk %5.2f GB/s\n", r + 1,
                  enc ? "encrypted" : "clear", t[t.size() / 2], got / s / 1e9);
      std::fflush(stdout);
    }
  }
  std::printf(
      "best: open %.2f ms encrypted vs %.2f ms clear; bulk %.2f GB/s encrypted vs %.2f GB/s clear "
      "(%.0f%%)\n",
      best_open[0], best_open[1], best_gbps[0], best_gbps[1], 100.0 * best_gbps[0] / best_gbps[1]);
  server.stop();
  return 0;
}
