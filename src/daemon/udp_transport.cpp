// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/udp_transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "daemon/peer_link.hpp"

namespace osmo::daemon {

Status UdpTransport::bind(const env::Endpoint& listen) {
  OSMO_ASSIGN_OR_RETURN(auto addr, resolve_endpoint(listen));
  fd_.reset(::socket(addr.first.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd_) return errno_error("socket(UDP)");
  if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr.first), addr.second) != 0)
    return errno_error("bind UDP {}", listen.str());
  return ok_status();
}

void UdpTransport::send(const env::Endpoint& to, std::span<const std::uint8_t> datagram) {
  auto it = resolved_.find(to);
  if (it == resolved_.end()) {
    auto r = resolve_endpoint(to);
    if (!r.ok()) {
      ++send_errors_;
      log_.warn("gossip: cannot send to {}: {}", to.str(), r.error().str());
      return;
    }
    it = resolved_.emplace(to, *r).first;
  }
  if (::sendto(fd_.get(), datagram.data(), datagram.size(), MSG_DONTWAIT,
               reinterpret_cast<const sockaddr*>(&it->second.first), it->second.second) < 0) {
    // Best effort like UDP itself: a full buffer or unreachable peer is a lost datagram.
    ++send_errors_;
    return;
  }
  bytes_sent_.fetch_add(datagram.size(), std::memory_order_relaxed);
}

bool UdpTransport::receive(env::Endpoint* from, std::vector<std::uint8_t>* datagram) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  datagram->resize(65536);
  ssize_t n = ::recvfrom(fd_.get(), datagram->data(), datagram->size(), MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&ss), &len);
  if (n < 0) return false;
  datagram->resize(static_cast<std::size_t>(n));
  bytes_received_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    from->port = ntohs(a->sin_port);
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    from->port = ntohs(a->sin6_port);
  }
  from->host = host;
  return true;
}

}  // namespace osmo::daemon
