// SPDX-License-Identifier: GPL-2.0-or-later
// The scrape endpoint (see http_endpoint.hpp).
#include "metrics/http_endpoint.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "base/fd_io.hpp"

namespace osmo::metrics {

namespace {

constexpr std::size_t kMaxRequest = 8192;
constexpr int kRequestTimeoutMs = 2000;  // a client that does not finish its request in time is dropped

void reply(int conn, const char* status, const char* type, const std::string& body) {
  const std::string head = fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", status, type, body.size());
  // A client that went away is its own problem; nothing to report.
  if (write_all(conn, head).ok()) (void)write_all(conn, body);
}

}  // namespace

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::start(UniqueFd listening, std::function<std::string()> body) {
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return make_error("metrics endpoint: eventfd: {}", std::strerror(errno));
  std::unique_ptr<HttpEndpoint> e(new HttpEndpoint(std::move(listening), std::move(wake), std::move(body)));
  e->thread_ = std::thread([p = e.get()] { p->serve(); });
  return e;
}

HttpEndpoint::HttpEndpoint(UniqueFd listening, UniqueFd wake, std::function<std::string()> body)
    : listening_(std::move(listening)), wake_(std::move(wake)), body_(std::move(body)) {}

HttpEndpoint::~HttpEndpoint() {
  const std::uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void HttpEndpoint::serve() {
  for (;;) {
    pollfd fds[2] = {{listening_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    UniqueFd conn(::accept4(listening_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    // A client that stops reading must not hold the only serving thread: the reply's writes give
    // up after the same time a request may take.
    const timeval tv{kRequestTimeoutMs / 1000, (kRequestTimeoutMs % 1000) * 1000};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    handle(conn.get());
  }
}

void HttpEndpoint::handle(int conn) {
  std::string req;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
  while (req.find("\r\n\r\n") == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{conn, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0 || req.size() >= kMaxRequest) {
      ++counters_.rejected;
      return;
    }
    char buf[1024];
    const ssize_t n = ::recv(conn, buf, sizeof buf, 0);
    if (n <= 0) {
      ++counters_.rejected;
      return;
    }
    req.append(buf, static_cast<std::size_t>(n));
  }
  const std::string line = req.substr(0, req.find("\r\n"));
  if (line.rfind("GET ", 0) != 0) {
    ++counters_.rejected;
    reply(conn, "405 Method Not Allowed", "text/plain; charset=utf-8", "only GET /metrics is served\n");
    return;
  }
  const std::string path = line.substr(4, line.find(' ', 4) - 4);
  if (path == "/metrics") {
    ++counters_.scrapes;
    reply(conn, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body_());
  } else if (path == "/") {
    reply(conn, "200 OK", "text/plain; charset=utf-8", "osmo daemon: metrics at /metrics\n");
  } else {
    ++counters_.rejected;
    reply(conn, "404 Not Found", "text/plain; charset=utf-8", "not found; metrics are at /metrics\n");
  }
}

}  // namespace osmo::metrics
