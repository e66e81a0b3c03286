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

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "daemon/services.hpp"

namespace osmo::migrate {

void install_migrate_service(daemon::Services& services, daemon::DaemonApi& api);

// The balancing loop's way in (src/balance): moves job `id`, which runs on this node, to node
// `to` as `osmo migrate` would (with the daemon's authority; a job pinned with --no-migrate is
// refused). Blocks until the move has ended; the answer is the report, or an error that says why
// (the job then runs here, as before).
Result<nlohmann::json> migrate_local_job(daemon::DaemonApi& api, const std::string& id, const std::string& to);

// The spec of job `id`, which runs on this node, as its shepherd describes it (the `spec` of the
// `describe` answer: home, no_migrate, ...).
Result<nlohmann::json> describe_local_job(const std::filesystem::path& state_dir, const std::string& id);

// One line (or a few) for `osmo migrate -v`: method, from -> to, freeze and total times, bytes.
std::string render_report(const nlohmann::json& report);

}  // namespace osmo::migrate
