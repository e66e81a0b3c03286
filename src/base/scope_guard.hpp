// SPDX-License-Identifier: GPL-2.0-or-later
// Runs a callable when the scope ends unless dismissed: cleanup that happens on every error path.
#pragma once

#include <utility>

namespace osmo {

template <typename F>
class ScopeGuard {
 public:
  explicit ScopeGuard(F f) : f_(std::move(f)) {}
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;
  ~ScopeGuard() {
    if (active_) f_();
  }
  void dismiss() { active_ = false; }

 private:
  F f_;
  bool active_ = true;
};

}  // namespace osmo
