// SPDX-License-Identifier: GPL-2.0-or-later
// Metrics formatting and the trace hash (see metrics.hpp).
#include "sim/metrics.hpp"

#include <cmath>

#include <fmt/format.h>

namespace osmo::sim {

void Metrics::set(const std::string& key, double v) {
  j_[key] = std::isfinite(v) ? std::round(v * 1e4) / 1e4 : -1.0;
}

void Metrics::merge(const Metrics& other) {
  for (const auto& [k, v] : other.j_.items()) j_[k] = v;
}

std::string Metrics::to_kv() const {
  std::string out;
  for (const auto& [k, v] : j_.items()) {
    out += k;
    out += '=';
    out += v.is_string() ? v.get<std::string>() : v.dump();
    out += '\n';
  }
  return out;
}

std::string Metrics::to_json() const { return j_.dump(); }

void TraceHash::add(std::span<const std::uint8_t> bytes) {
  for (std::uint8_t b : bytes) {
    h_ ^= b;
    h_ *= 0x100000001b3ULL;
  }
}

void TraceHash::add(std::uint64_t v) {
  std::uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
  add(std::span<const std::uint8_t>(b, 8));
}

void TraceHash::add(std::string_view s) {
  add(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  add(static_cast<std::uint64_t>(s.size()));
}

std::string TraceHash::hex() const { return fmt::format("{:016x}", h_); }

}  // namespace osmo::sim
