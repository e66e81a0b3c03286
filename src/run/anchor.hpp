// SPDX-License-Identifier: GPL-2.0-or-later
// The home anchor: the `osmo run` side of a job's relay stream. It feeds the job's stdin from ours
// (within the credit the shepherd grants), writes the job's stdout and stderr to ours, forwards
// the job-control signals it receives, and ends with the job's exit status, or with one of the
// statuses of exit_status.hpp and a one-line message when the node refuses or vanishes.
//
// Our stdin/stdout/stderr stay in blocking mode (they are usually shared with the shell, which
// must not find them non-blocking afterwards), so each direction has a thread of its own: one
// reads the stream and writes our stdout/stderr, one reads our stdin and writes the stream, and
// the calling thread handles signals.
#pragma once

#include <string>

#include "base/unique_fd.hpp"

namespace osmo::run {

// No byte and no heartbeat from the node for this long while we wait for one: the node is dead.
// The shepherd sends a heartbeat after 1 s of silence, so this tolerates a few lost seconds.
inline constexpr int kAnchorDeadAfterMs = 5000;

struct AnchorOptions {
  int in_fd = 0;
  int out_fd = 1;
  int err_fd = 2;
  // Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2, SIGTSTP, SIGCONT to the job. Changes
  // the signal mask of the calling process; off in unit tests.
  bool forward_signals = true;
  bool verbose = false;
  std::string node;  // the node we expect to run the job, for messages before it says so
};

// Runs until the job ends or the stream fails; returns the exit status `osmo run` should have.
int run_anchor(UniqueFd stream, const AnchorOptions& options);

}  // namespace osmo::run
