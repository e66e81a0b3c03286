// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon side of `osmo run`, `osmo ps` and `osmo kill`, installed as a daemon plugin.
//
// Control operations (local clients, credentials from SO_PEERCRED):
//   run.start  {spec fields, "node"?, "at_home"?, "anchor"?} -> {"id", "node", "attach_token"?} +
//              the relay stream fd, or {"failed": "no_node"|"refused", "message"} when no job could
//              be started. With "anchor": true the connection stays open as the job's anchor
//              registration (anchor_registry.hpp): the daemon passes attaching streams on it.
//   run.anchor {"id", "attach_token"} -> {}: registers the connection again (daemon restarted)
//   jobs.list  {"node"?} -> {"jobs": [...], "errors": [...]}, gathered from every alive member
//   jobs.kill  {"id", "signal"} -> {"node"} where the job was signalled
// Peer services (other daemons, authenticated by the cluster key):
//   job.start  header {"spec"}: the stream becomes the job's relay stream (shepherd.hpp)
//   job.attach header {"id", "epoch", "token"}: a shepherd that took the job over after a move;
//              the stream is passed to the job's anchor, or gets a `rejected` frame
//   jobs.list  -> one JSON line with this node's jobs
//   jobs.signal header {"id", "signal", "uid"} -> one JSON line {"found", "error"?}
#pragma once

#include <cstdint>
#include <functional>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "daemon/services.hpp"
#include "run/job_spec.hpp"
#include "run/job_table.hpp"

namespace osmo::run {

// For the target of a move: opens a stream to the `job.attach` service of the job's home daemon
// (spec.home, found in the cluster view; this node itself if it is the home), to be handed to
// adopt_shepherd_main as its dial_home. The stream then runs straight to `osmo run`.
Result<UniqueFd> dial_job_attach(daemon::DaemonApi& api, const JobSpec& spec, std::uint32_t epoch,
                                 int timeout_ms);
// The header of a `job.attach` request (for a dial that does not go through a DaemonApi).
daemon::Json job_attach_header(const JobSpec& spec, std::uint32_t epoch);

void install_run_service(daemon::Services& services, daemon::DaemonApi& api);

// Whether a job can move now (ok) or why not, without touching it: `movable` and `why_not` in
// `jobs.list`. Installed at program start by the migration code (which owns the rule); without
// one, jobs are listed without those fields.
using MovabilityCheck = std::function<Status(const JobRecord&)>;
void set_movability_check(MovabilityCheck check);

}  // namespace osmo::run
