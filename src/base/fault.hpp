// SPDX-License-Identifier: GPL-2.0-or-later
// Fault points: production code asks fault_armed("part.point") at named places, and takes its
// real failure path when the environment variable OSMO_FAULT (a comma-separated list of names)
// names that point. Tests use it to prove that every failure path cleans up. Each part keeps the
// table of its points beside its code (ckpt/faults.cpp, migrate/faults.hpp) and in its docs.
#pragma once

#include <string_view>

namespace osmo {

// True when OSMO_FAULT lists `name` exactly (read at each call: tests set it per process).
bool fault_armed(std::string_view name);

}  // namespace osmo
