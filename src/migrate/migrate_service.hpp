// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon side of migration (docs/migration.md):
//   control `jobs.migrate` {id, node, to, method, check}: from `osmo migrate` on any node; asks
//                          the node that runs the job (itself, or `job.migrate` on that node).
//   peer `job.migrate`     on the node that runs the job: checks owner, target and movability,
//                          opens the sealed stream to the target (`job.migrate_in`) and hands it
//                          to the job's shepherd, which carries out the source side; answers
//                          with the shepherd's report.
//   peer `job.migrate_in`  on the target: starts a new shepherd (not the daemon's child) that
//                          restores the job from the stream, attaches to its home and runs it.
// The daemon holds the cluster key; the shepherds only ever get the per-migration session key.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "daemon/services.hpp"

namespace osmo::migrate {

void install_migrate_service(daemon::Services& services, daemon::DaemonApi& api);

// One line (or a few) for `osmo migrate -v`: method, from -> to, freeze and total times, bytes.
std::string render_report(const nlohmann::json& report);

}  // namespace osmo::migrate
