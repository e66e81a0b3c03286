// SPDX-License-Identifier: GPL-2.0-or-later
// Fault injection: production code calls fault("dump.pages") at named points; when the
// environment variable OSMO_FAULT lists that name, the call returns an error and the engine takes
// its normal failure path. Used by tests to prove every failure path cleans up.
#pragma once

#include "base/result.hpp"

namespace osmo::ckpt {

// Returns an error "fault injected at <name>" if OSMO_FAULT names this point; else ok.
// Unknown names are a programming error (asserted against the table in faults.cpp).
Status fault(const char* name);

}  // namespace osmo::ckpt
