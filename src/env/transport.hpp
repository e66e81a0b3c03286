// SPDX-License-Identifier: GPL-2.0-or-later
// Datagram transport as an interface. Gossip hands outgoing datagrams to a Transport and is fed
// incoming ones by its owner; the daemon implements it with a UDP socket, the simulator with a
// virtual network that can delay, drop, duplicate and partition.
#pragma once

#include <cstdint>
#include <span>

#include "env/endpoint.hpp"

namespace osmo::env {

// Upper bound for one datagram on every transport: fits a 1500-byte MTU with IP/UDP headers.
inline constexpr std::size_t kMaxDatagramBytes = 1400;

class Transport {
 public:
  virtual ~Transport() = default;
  // Best effort, like UDP: a datagram may be lost; never blocks.
  virtual void send(const Endpoint& to, std::span<const std::uint8_t> datagram) = 0;
};

}  // namespace osmo::env
