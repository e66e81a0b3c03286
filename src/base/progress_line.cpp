// SPDX-License-Identifier: GPL-2.0-or-later
// The progress line (progress_line.hpp).
#include "base/progress_line.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <condition_variable>

#include <fmt/format.h>

#include "base/fd_io.hpp"

namespace osmo {
namespace {

constexpr auto kRedrawEvery = std::chrono::milliseconds(100);

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    u++;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.1f} {}", b, units[u]);
}

}  // namespace

bool progress_wanted(bool quiet) { return !quiet && ::isatty(STDERR_FILENO) == 1; }

std::string render_progress(std::string_view what, std::string_view phase, std::uint64_t bytes,
                            double seconds, std::size_t width) {
  std::string s(what);
  if (!phase.empty()) s += fmt::format(" · {}", phase);
  if (bytes > 0) {
    s += " · " + human_bytes(static_cast<double>(bytes));
    if (seconds >= 0.1) s += " · " + human_bytes(static_cast<double>(bytes) / seconds) + "/s";
  }
  s += fmt::format(" · {:.1f} s", seconds);
  // Cut by code points, not bytes: "·" is two bytes of UTF-8 and one column.
  if (width > 0) {
    std::size_t cols = 0, i = 0;
    for (; i < s.size(); i++) {
      if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
      if (cols == width) break;
      cols++;
    }
    s.resize(i);
  }
  return s;
}

ProgressLine::ProgressLine(std::string what, bool enabled, int fd)
    : what_(std::move(what)), enabled_(enabled), fd_(fd) {
  if (!enabled_) return;
  winsize ws{};
  // One column short of the terminal: a line that fills it exactly wraps on some terminals.
  if (::ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) width_ = ws.ws_col - 1u;
}

ProgressLine::~ProgressLine() { clear(); }

void ProgressLine::phase(std::string_view p) {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  phase_ = p;
  draw(true);
}

void ProgressLine::bytes(std::uint64_t total) {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  bytes_ = total;
  draw(false);
}

void ProgressLine::add_bytes(std::uint64_t n) {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  bytes_ += n;
  draw(false);
}

void ProgressLine::tick() {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  draw(false);
}

void ProgressLine::draw(bool force) {
  const auto now = Clock::now();
  if (!force && drawn_ && now - last_draw_ < kRedrawEvery) return;
  last_draw_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  // "\r" back to column 0, the frame, then erase whatever a longer previous frame left.
  const std::string frame = "\r" + render_progress(what_, phase_, bytes_, secs, width_) + "\033[K";
  (void)write_all(fd_, frame);  // a progress line that cannot be drawn is no error
  drawn_ = true;
}

void ProgressLine::clear() {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  erase();
}

void ProgressLine::erase() {
  if (!drawn_) return;
  static constexpr char kErase[] = "\r\033[K";
  (void)write_all(fd_, std::string_view(kErase, sizeof kErase - 1));
  drawn_ = false;
}

ProgressTicker::ProgressTicker(ProgressLine& line) {
  if (!line.enabled()) return;
  thread_ = std::jthread([&line](std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    // Woken at once by the destructor's stop request, not after the rest of a period.
    for (;;) {
      cv.wait_for(lock, stop, kRedrawEvery, [] { return false; });
      if (stop.stop_requested()) return;
      line.tick();
    }
  });
}

ProgressTicker::~ProgressTicker() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

}  // namespace osmo
