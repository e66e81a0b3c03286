// SPDX-License-Identifier: GPL-2.0-or-later
// Registers the balancing loop with the daemon. (`osmo drain` itself is a daemon command: the
// draining state is the daemon's, gossiped with its load; this part carries the moves out.)
#include "balance/balance_service.hpp"
#include "cli/commands.hpp"
#include "daemon/services.hpp"

namespace osmo::cli {

void add_balance_commands(CLI::App&, GlobalOptions&, int*) {
  daemon::register_plugin(balance::install_balance_service);
}

}  // namespace osmo::cli
