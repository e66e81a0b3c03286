// SPDX-License-Identifier: GPL-2.0-or-later
// A network endpoint (IPv4/IPv6 literal or name, plus UDP/TCP port), as carried in gossip messages
// and configuration. Text form: "10.7.0.2:7946", "[::1]:7946", "node3:7946".
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace osmo::env {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;

  std::string str() const;
  auto operator<=>(const Endpoint&) const = default;
};

// Parses "host:port" / "[v6]:port"; when the port is missing, `default_port` is used.
Result<Endpoint> parse_endpoint(std::string_view text, std::uint16_t default_port);

}  // namespace osmo::env
