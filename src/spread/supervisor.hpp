// SPDX-License-Identifier: GPL-2.0-or-later
// The node's spread supervisor, a daemon plugin: it answers the exec notifications of every job
// on this node (exec_filter.hpp) with "stay" or with a redirect to a deputy (redirect.hpp,
// deputy.hpp) that starts the program on the node the placement policy chose.
//
// One thread, one epoll: the handover socket (<state_dir>/spread.sock, supervisor_link.hpp) and
// one exec listener per job. A decision to stay is made on that thread without any I/O but the
// read of the exec's path (the budget is 50 us per exec, docs/spread.md):
//
//   1. the path's last component is in the node's stay-local list          -> stay ("tiny")
//   2. policy (cluster_view::place_job, with this supervisor's ledger and a home margin of
//      kHomeMargin) keeps it here                                             -> stay ("placement")
//   3. the file is setuid/setgid/has capabilities; an fd cannot be relayed    -> stay (why)
//   4. otherwise the caller is redirected to exec `osmo __spread-deputy --node N ...`.
//
// Every "stay" with its reason, and every redirect, is in the debug log (module "spread").
#pragma once

#include "daemon/services.hpp"

namespace osmo::spread {

// The normalised load by which another node must beat this one before a program leaves: more
// than run.start's 0.1, because a program started by a job is often short (a compiler on one
// file) and its deputy and remote start cost ~5 ms. 0.5 is half of this node's capacity: on a
// node with N CPUs about N programs stay before the next one goes.
inline constexpr double kHomeMargin = 0.5;

void install_spread_service(daemon::Services& services, daemon::DaemonApi& api);

}  // namespace osmo::spread
