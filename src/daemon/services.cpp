// SPDX-License-Identifier: GPL-2.0-or-later
// The plugin registry: filled before the command line is parsed, read when the daemon starts.
#include "daemon/services.hpp"

namespace osmo::daemon {
namespace {
std::vector<Plugin>& registry() {
  static std::vector<Plugin> plugins;
  return plugins;
}
}  // namespace

void register_plugin(Plugin plugin) { registry().push_back(std::move(plugin)); }
const std::vector<Plugin>& plugins() { return registry(); }

}  // namespace osmo::daemon
