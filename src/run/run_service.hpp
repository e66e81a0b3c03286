// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon side of `osmo run`, `osmo ps` and `osmo kill`, installed as a daemon plugin.
//
// Control operations (local clients, credentials from SO_PEERCRED):
//   run.start  {spec fields, "node"?, "at_home"?} -> {"id", "node"} + the relay stream fd, or
//              {"failed": "no_node"|"refused", "message"} when no job could be started
//   jobs.list  {"node"?} -> {"jobs": [...], "errors": [...]}, gathered from every alive member
//   jobs.kill  {"id", "signal"} -> {"node"} where the job was signalled
// Peer services (other daemons, authenticated by the cluster key):
//   job.start  header {"spec"}: the stream becomes the job's relay stream (shepherd.hpp)
//   jobs.list  -> one JSON line with this node's jobs
//   jobs.signal header {"id", "signal", "uid"} -> one JSON line {"found", "error"?}
#pragma once

#include "daemon/services.hpp"

namespace osmo::run {

void install_run_service(daemon::Services& services, daemon::DaemonApi& api);

}  // namespace osmo::run
