// SPDX-License-Identifier: GPL-2.0-or-later
// env::Transport over a real UDP socket: the gossip node's only way out of the daemon.
#pragma once

#include <atomic>

#include <sys/socket.h>

#include <map>
#include <vector>
#include <mutex>

#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "env/transport.hpp"

namespace osmo::daemon {

class UdpTransport final : public env::Transport {
 public:
  explicit UdpTransport(Logger log) : log_(std::move(log)) {}
  Status bind(const env::Endpoint& listen);
  int fd() const { return fd_.get(); }

  void send(const env::Endpoint& to, std::span<const std::uint8_t> datagram) override;
  // Reads one pending datagram (non-blocking). False when none is pending.
  bool receive(env::Endpoint* from, std::vector<std::uint8_t>* datagram);

  std::uint64_t send_errors() const { return send_errors_; }
  // Bytes of datagrams sent and received (for the metrics; read from the metrics thread).
  std::uint64_t bytes_sent() const { return bytes_sent_.load(std::memory_order_relaxed); }
  std::uint64_t bytes_received() const { return bytes_received_.load(std::memory_order_relaxed); }

 private:
  Logger log_;
  UniqueFd fd_;
  std::uint64_t send_errors_ = 0;
  std::atomic<std::uint64_t> bytes_sent_{0};
  std::atomic<std::uint64_t> bytes_received_{0};
  std::map<env::Endpoint, std::pair<sockaddr_storage, socklen_t>> resolved_;  // by endpoint
};

}  // namespace osmo::daemon
