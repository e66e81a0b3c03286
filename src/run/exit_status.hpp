// SPDX-License-Identifier: GPL-2.0-or-later
// Exit statuses of `osmo run` besides the job's own. A job's status passes through unchanged
// (0-255, or 128+N when it was killed by signal N, like a shell); osmo's own failures use the top
// of the range, where programs rarely go. Documented in `osmo run --help` and docs/run.md.
#pragma once

namespace osmo::run {

inline constexpr int kExitNotExecutable = 126;   // PROG found but could not be executed
inline constexpr int kExitNotFound = 127;        // PROG not found in the job's PATH
inline constexpr int kExitSignalBase = 128;      // + N: the job was killed by signal N
inline constexpr int kExitUsage = 2;             // bad command line (CLI11 convention)
inline constexpr int kExitLocalDaemon = 249;     // the local daemon could not be reached/asked
inline constexpr int kExitNoNode = 250;          // no node reachable to run the job
inline constexpr int kExitRefused = 251;         // the target refused (auth, unknown user, cwd...)
inline constexpr int kExitNodeDied = 252;        // the node died / the stream broke mid-run
inline constexpr int kExitProtocol = 253;        // the relay stream carried something invalid

}  // namespace osmo::run
