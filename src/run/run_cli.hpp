// SPDX-License-Identifier: GPL-2.0-or-later
// The fast path of `osmo run` (run_cli.cpp): main() calls it before it builds the command-line
// parser for all of osmo's commands, because that costs `osmo run` start-up time (heap pages,
// each a ~12 us page fault on our VMs). It accepts exactly the forms the CLI11 parser accepts
// the same way (global --socket/--log-level, then `run`, run's options, [--] PROG ARGS...) and
// leaves anything else (help, errors, other commands) to the full parser.
#pragma once

#include <optional>

namespace osmo::cli {

// The exit status of `osmo run`, or nullopt when argv is not a plain `osmo run` invocation.
std::optional<int> run_fast_path(int argc, char** argv);

}  // namespace osmo::cli
