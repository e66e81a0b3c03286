// SPDX-License-Identifier: GPL-2.0-or-later
// The simulator's results: an ordered list of key=value metrics (printed one per line, or as a JSON
// object), plus a running FNV-1a hash that scenarios fold every observable event into, so that
// "same seed, same run" can be checked by comparing two hashes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace osmo::sim {

class Metrics {
 public:
  void set(const std::string& key, std::int64_t v) { j_[key] = v; }
  void set(const std::string& key, std::uint64_t v) { j_[key] = v; }
  void set(const std::string& key, int v) { j_[key] = v; }
  void set(const std::string& key, bool v) { j_[key] = v; }
  void set(const std::string& key, const std::string& v) { j_[key] = v; }
  void set(const std::string& key, const char* v) { j_[key] = std::string(v); }
  // Doubles are rounded to 4 decimals: enough for every figure we report, and the text form is
  // then stable across libc versions.
  void set(const std::string& key, double v);

  void set_json(const std::string& key, const nlohmann::ordered_json& v) { j_[key] = v; }
  void merge(const Metrics& other);
  bool has(const std::string& key) const { return j_.contains(key); }
  const nlohmann::ordered_json& json() const { return j_; }

  std::string to_kv() const;    // "key=value\n" per metric, strings unquoted
  std::string to_json() const;  // one line

 private:
  nlohmann::ordered_json j_ = nlohmann::ordered_json::object();
};

// 64-bit FNV-1a, incremental.
class TraceHash {
 public:
  void add(std::span<const std::uint8_t> bytes);
  void add(std::uint64_t v);
  void add(std::string_view s);
  std::uint64_t value() const { return h_; }
  std::string hex() const;

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace osmo::sim
