// SPDX-License-Identifier: GPL-2.0-or-later
// The balancing loop of every daemon (docs/balancing.md), a daemon plugin:
//   - a thread that, every balance_interval_ms, samples this node's jobs (job_sampler.hpp), asks
//     the policy (through src/cluster_view, as the simulator does) whether one should move and
//     where - policy::decide_balance, or policy::decide_drain while the node is draining - asks
//     the target to reserve room (peer `balance.reserve`) and carries the move out through the
//     migration transaction (migrate::migrate_local_job);
//   - peer `balance.reserve` {job, source, reason, cpu_share, mem_mb, source_load_before,
//     source_load_after, required_gain, cost_ms} or {cancel: true, job}: the target's half,
//     policy::accept_move on its own figures and its promises; answers {accepted, why, load_after};
//   - control `balance.status`: the loop's settings and counters (JSON), for tests and operators;
//   - the guest counter the daemon's SIGTERM waits on.
// One move at a time per node: the thread carries a move out before it decides again.
#pragma once

#include "daemon/services.hpp"

namespace osmo::balance {

void install_balance_service(daemon::Services& services, daemon::DaemonApi& api);

}  // namespace osmo::balance
