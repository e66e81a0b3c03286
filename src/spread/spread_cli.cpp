// SPDX-License-Identifier: GPL-2.0-or-later
// Registers the spread supervisor as a daemon plugin (after the run service's, whose launcher must
// be forked while the daemon has one thread) for every `osmo` invocation.
#include "cli/commands.hpp"
#include "daemon/services.hpp"
#include "spread/supervisor.hpp"

namespace osmo::cli {

void add_spread_commands(CLI::App&, GlobalOptions&, int*) {
  daemon::register_plugin(spread::install_spread_service);
}

}  // namespace osmo::cli
