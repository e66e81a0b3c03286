// SPDX-License-Identifier: GPL-2.0-or-later
// Waiting in tests for what another process does (a signal delivered, a child reaped): polls a
// condition instead of sleeping a fixed time, so a fast machine is not slowed and a loaded one
// still passes.
#pragma once

#include <chrono>
#include <thread>

namespace osmo::testing {

// Polls `cond` every 10 ms for at most `limit`.
template <typename F>
bool eventually(F cond, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

}  // namespace osmo::testing
