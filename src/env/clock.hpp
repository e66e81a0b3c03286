// SPDX-License-Identifier: GPL-2.0-or-later
// Time as an interface. Protocol code (gossip, policy) never reads the system clock: it is handed
// a Clock, which the daemon implements with CLOCK_MONOTONIC and the simulator with virtual time.
#pragma once

#include <cstdint>

namespace osmo::env {

// Milliseconds on a monotonic timeline whose origin is arbitrary (never wall-clock time).
using TimeMs = std::int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs now_ms() const = 0;
};

// CLOCK_MONOTONIC.
class SystemClock final : public Clock {
 public:
  TimeMs now_ms() const override;
};

// A clock that only moves when told to: for unit tests and the simulator.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start_ms = 0) : now_ms_(start_ms) {}
  TimeMs now_ms() const override { return now_ms_; }
  void advance_ms(TimeMs delta_ms) { now_ms_ += delta_ms; }
  void set_ms(TimeMs t_ms) { now_ms_ = t_ms; }

 private:
  TimeMs now_ms_;
};

}  // namespace osmo::env
