// SPDX-License-Identifier: GPL-2.0-or-later
// Per-module logging. Every line names the node and the module and carries key=value details.
// The timestamp comes from an injected time source when one is given (the simulator passes its
// virtual clock, so two runs of one seed produce identical logs); otherwise from the wall clock.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace osmo {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

class Logger {
 public:
  using TimeSourceMs = std::function<std::int64_t()>;
  using Sink = std::function<void(LogLevel, std::string_view line)>;

  Logger() : Logger("-", "-") {}
  Logger(std::string node, std::string module, TimeSourceMs now_ms = {})
      : node_(std::move(node)), module_(std::move(module)), now_ms_(std::move(now_ms)) {}

  // Process-wide settings; the sink defaults to stderr through spdlog.
  static void set_level(LogLevel level);
  static LogLevel level();
  static void set_sink(Sink sink);  // empty sink restores the default
  static bool parse_level(std::string_view text, LogLevel* out);

  bool enabled(LogLevel l) const { return l >= level(); }

  template <typename... Args>
  void trace(fmt::format_string<Args...> f, Args&&... a) const {
    log(LogLevel::kTrace, f, std::forward<Args>(a)...);
  }
  template <typename... Args>
  void debug(fmt::format_string<Args...> f, Args&&... a) const {
    log(LogLevel::kDebug, f, std::forward<Args>(a)...);
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... a) const {
    log(LogLevel::kInfo, f, std::forward<Args>(a)...);
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... a) const {
    log(LogLevel::kWarn, f, std::forward<Args>(a)...);
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... a) const {
    log(LogLevel::kError, f, std::forward<Args>(a)...);
  }

  const std::string& node() const { return node_; }
  const std::string& module() const { return module_; }

 private:
  template <typename... Args>
  void log(LogLevel l, fmt::format_string<Args...> f, Args&&... a) const {
    if (!enabled(l)) return;
    emit(l, fmt::format(f, std::forward<Args>(a)...));
  }
  void emit(LogLevel l, const std::string& message) const;

  std::string node_;
  std::string module_;
  TimeSourceMs now_ms_;
};

}  // namespace osmo
