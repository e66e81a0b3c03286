// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's control socket: a unix stream socket speaking JSON lines (docs/protocol.md). Each
// connection is served on a thread of its own (bounded), request after request, so a handler may
// block briefly (e.g. asking other nodes) without stalling gossip.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/log.hpp"
#include "daemon/services.hpp"

namespace osmo::daemon {

class ControlServer {
 public:
  explicit ControlServer(Logger log) : shared_(std::make_shared<Shared>()) { shared_->log = std::move(log); }
  ~ControlServer();

  void add(std::string op, ControlHandler handler);
  // Binds the socket (creating its directory; replacing a stale socket file, refusing to replace
  // one a live daemon still answers on) and starts accepting.
  Status start(const std::string& path);
  void stop();

  std::uint64_t requests_served() const { return shared_->served.load(); }
  // For tests: the deadline of one request (10 s).
  void set_request_deadline_ms(int ms) { shared_->request_deadline_ms = ms; }

 private:
  // What connection threads touch; held by shared_ptr because they are detached (a streaming
  // handler may outlive the server object).
  struct Shared {
    Logger log;
    std::atomic<int> active{0};
    std::atomic<std::uint64_t> served{0};
    // A request, once its first byte is in, must be complete within this time: `osmo` writes a
    // whole request at once, so only a client that trickles bytes to hold a thread meets it.
    std::atomic<int> request_deadline_ms{10'000};
    std::mutex mu;
    std::map<std::string, ControlHandler> handlers;  // guarded by mu
  };

  void accept_loop();
  static void serve(const std::shared_ptr<Shared>& shared, UniqueFd conn);

  std::shared_ptr<Shared> shared_;
  std::string path_;
  UniqueFd listen_fd_;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
};

}  // namespace osmo::daemon
