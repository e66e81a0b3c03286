// SPDX-License-Identifier: GPL-2.0-or-later
// One line of progress on a terminal for the commands that can take more than a second
// (`osmo checkpoint`, `osmo restore`, `osmo migrate`, `osmo drain`): what is being done, the
// phase, bytes moved and the rate, redrawn in place on stderr at most ten times a second and
// erased when the command ends, so the command's real output (and a script reading it) is
// untouched. Shown only when stderr is a terminal and the user did not ask for --quiet: a log
// file or a pipe never receives carriage returns and escape sequences.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace osmo {

// Whether a command's progress line should be drawn: stderr is a terminal and not --quiet.
bool progress_wanted(bool quiet);

// The text of one frame, cut to `width` columns (the terminal's; 0 = no limit):
//   "<what> · <phase> · 412.0 MiB · 1.21 GiB/s · 3.4 s"
// Bytes and rate appear once there are bytes; the rate once a tenth of a second has passed.
std::string render_progress(std::string_view what, std::string_view phase, std::uint64_t bytes,
                            double seconds, std::size_t width);

// Safe to call from several threads (a ticker below, the engine's writer).
class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;
  // Disabled: every call is a no-op (and costs a branch). Draws to `fd` (stderr by default).
  ProgressLine(std::string what, bool enabled, int fd = 2);
  ~ProgressLine();  // erases the line
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void phase(std::string_view p);    // a new phase is drawn at once
  void bytes(std::uint64_t total);   // cumulative; redrawn at most every 100 ms
  void add_bytes(std::uint64_t n);
  void tick();                       // redraws the elapsed time (a wait without bytes)
  void clear();                      // erases the line now (before printing a result)
  bool enabled() const { return enabled_; }

 private:
  void draw(bool force);  // holds mu_
  void erase();           // holds mu_

  std::mutex mu_;
  std::string what_, phase_;
  bool enabled_;
  int fd_;
  std::uint64_t bytes_ = 0;
  Clock::time_point start_ = Clock::now(), last_draw_{};
  bool drawn_ = false;
  std::size_t width_ = 0;
};

// Redraws a line every 100 ms while a call that reports nothing itself blocks (a restore from a
// file, a migration done by another node), so the elapsed time shows the command is alive.
class ProgressTicker {
 public:
  explicit ProgressTicker(ProgressLine& line);
  ~ProgressTicker();  // stops and joins

 private:
  std::jthread thread_;
};

}  // namespace osmo
