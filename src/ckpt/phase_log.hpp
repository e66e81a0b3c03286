// SPDX-License-Identifier: GPL-2.0-or-later
// The engine's log and its phase timings: `dump pid=N <phase> ms=...` and `restore pid=N <phase>
// ms=...` at debug level (osmo's --log-level debug, or BENCH_DEBUG=1 for bench/ckpt), so where a
// slow checkpoint or restore spends its time can be seen without a profiler.
#pragma once

#include <chrono>

#include "base/log.hpp"

namespace osmo::ckpt {

inline const Logger& engine_log() {
  static const Logger kLog("-", "ckpt");
  return kLog;
}

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace osmo::ckpt
