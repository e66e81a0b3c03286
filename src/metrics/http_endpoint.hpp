// SPDX-License-Identifier: GPL-2.0-or-later
// The scrape endpoint: a minimal HTTP/1.1 server that answers `GET /metrics` with the registry's
// exposition, one connection at a time on a thread of its own (Prometheus scrapes every few
// seconds; nothing else is served). Written here rather than with Debian's cpp-httplib, which is
// built as a shared library linked with OpenSSL, zlib and brotli: every `osmo` command is this one
// binary, whose start latency matters (docs/run.md), and those libraries would load into each.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace osmo::metrics {

struct HttpCounters {
  std::atomic<std::uint64_t> scrapes{0};
  std::atomic<std::uint64_t> rejected{0};  // malformed, not GET, unknown path, too slow
};

class HttpEndpoint {
 public:
  // `listening` is a bound, listening TCP socket; `body` makes the exposition for each scrape.
  static Result<std::unique_ptr<HttpEndpoint>> start(UniqueFd listening, std::function<std::string()> body);
  ~HttpEndpoint();  // stops the thread
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  const HttpCounters& counters() const { return counters_; }

 private:
  HttpEndpoint(UniqueFd listening, UniqueFd wake, std::function<std::string()> body);
  void serve();
  void handle(int conn);

  UniqueFd listening_;
  UniqueFd wake_;  // an eventfd: written to stop the thread
  std::function<std::string()> body_;
  HttpCounters counters_;
  std::thread thread_;
};

}  // namespace osmo::metrics
