// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/log.hpp"

#include <atomic>
#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace osmo {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::mutex g_sink_mu;
Logger::Sink g_sink;  // guarded by g_sink_mu

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kTrace: return "TRACE";
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
    case LogLevel::kOff: return "OFF";
  }
  return "?";
}

spdlog::logger& default_backend() {
  // The wall-clock timestamp is added by spdlog; lines with an injected clock carry their own.
  static auto backend = [] {
    auto l = spdlog::stderr_logger_mt("osmo");
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %v");
    l->set_level(spdlog::level::trace);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *backend;
}

}  // namespace

void Logger::set_level(LogLevel level) { g_level.store(level); }
LogLevel Logger::level() { return g_level.load(); }

void Logger::set_sink(Sink sink) {
  std::lock_guard lk(g_sink_mu);
  g_sink = std::move(sink);
}

bool Logger::parse_level(std::string_view text, LogLevel* out) {
  static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
      {"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
      {"warn", LogLevel::kWarn},   {"error", LogLevel::kError}, {"off", LogLevel::kOff}};
  for (const auto& [name, l] : kNames) {
    if (text == name) {
      *out = l;
      return true;
    }
  }
  return false;
}

void Logger::emit(LogLevel l, const std::string& message) const {
  std::string line =
      now_ms_ ? fmt::format("t={}ms {} [{}] {}: {}", now_ms_(), level_name(l), node_, module_, message)
              : fmt::format("{} [{}] {}: {}", level_name(l), node_, module_, message);
  {
    std::lock_guard lk(g_sink_mu);
    if (g_sink) {
      g_sink(l, line);
      return;
    }
  }
  default_backend().log(spdlog::level::info, "{}", line);
}

}  // namespace osmo
