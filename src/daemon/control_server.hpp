// The daemon's control socket: a unix stream socket speaking JSON lines (docs/protocol.md). Each
// connection is served on a thread of its own (bounded), request after request, so a handler may
// block briefly (e.g. asking other nodes) without stalling gossip.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "base/log.hpp"
#include "daemon/services.hpp"

namespace osmo::daemon {

class ControlServer {
 public:
  explicit ControlServer(Logger log) : log_(std::move(log)) {}
  ~ControlServer();

  void add(std::string op, ControlHandler handler);
  // Binds the socket (creating its directory; replacing a stale socket file, refusing to replace
  // one a live daemon still answers on) and starts accepting.
  Status start(const std::string& path);
  void stop();

  std::uint64_t requests_served() const { return served_.load(); }

 private:
  void accept_loop();
  void serve(UniqueFd conn);

  Logger log_;
  std::string path_;
  UniqueFd listen_fd_;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  std::atomic<std::uint64_t> served_{0};
  std::mutex mu_;
  std::map<std::string, ControlHandler> handlers_;
};

}  // namespace osmo::daemon
