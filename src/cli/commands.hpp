// SPDX-License-Identifier: GPL-2.0-or-later
// Every part of osmo that has user-facing commands registers them on the single `osmo` binary
// through one of these functions. A command's callback stores its exit status in *exit_code.
#pragma once

#include <CLI/CLI.hpp>

namespace osmo::cli {

// The control socket of the local daemon: --socket, else $OSMO_SOCKET, else the default.
inline constexpr const char* kDefaultControlSocket = "/run/osmo/osmod.sock";

struct GlobalOptions {
  std::string socket_path;       // resolved before any callback runs
  bool socket_explicit = false;  // given by --socket or $OSMO_SOCKET (not the default)
  std::string log_level = "info";
  bool quiet = false;  // --quiet: no progress line on a terminal (base/progress_line.hpp)
};

// src/daemon: `osmo daemon`, `osmo nodes`, `osmo leave`, `osmo drain`, `osmo status`.
void add_daemon_commands(CLI::App& app, GlobalOptions& global, int* exit_code);
// src/testbed: `osmo testbed up|down|exec|list`.
void add_testbed_commands(CLI::App& app, GlobalOptions& global, int* exit_code);
// src/ckpt: `osmo checkpoint`, `osmo restore`, `osmo image show`.
void add_ckpt_commands(CLI::App& app, GlobalOptions& global, int* exit_code);
// src/run: `osmo run`, `osmo ps`, `osmo kill`.
void add_run_commands(CLI::App& app, GlobalOptions& global, int* exit_code);
// src/migrate: `osmo migrate`, and the hidden `osmo __job-migrate-in` (a migration's target side).
void add_migrate_commands(CLI::App& app, GlobalOptions& global, int* exit_code);
// src/mon: `osmo mon`, the live monitor.
void add_mon_commands(CLI::App& app, GlobalOptions& global, int* exit_code);
// src/balance: the daemon's balancing loop (no command of its own; `osmo drain` is the daemon's).
void add_balance_commands(CLI::App& app, GlobalOptions& global, int* exit_code);
// src/spread: the daemon's spread supervisor (docs/spread.md); `osmo __spread-deputy` is
// dispatched from main() before the parser (spread/deputy.hpp).
void add_spread_commands(CLI::App& app, GlobalOptions& global, int* exit_code);

}  // namespace osmo::cli
