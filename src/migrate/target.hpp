// SPDX-License-Identifier: GPL-2.0-or-later
// The target side of a migration: `osmo __job-migrate-in 3 4`, a process of its own that the
// target daemon starts (not its child, like every shepherd) with the sealed stream from the
// source on fd 3 and its order (IncomingOrder, JSON) on fd 4. It restores the job held, attaches
// to the job's home, and only when home accepts it lets the job run; it then stays on as the
// job's shepherd until the job ends (docs/migration.md).
#pragma once

namespace osmo::migrate {

// Returns the process's exit status (0: the job moved here and has ended; 1: the migration did
// not happen here, the job runs at the source).
int incoming_main(int stream_fd, int order_fd);

}  // namespace osmo::migrate
