// SPDX-License-Identifier: GPL-2.0-or-later
// The home anchor: the `osmo run` side of a job's relay stream. It feeds the job's stdin from ours
// (within the credit the shepherd grants), writes the job's stdout and stderr to ours, forwards
// the job-control signals it receives, and ends with the job's exit status, or with one of the
// statuses of exit_status.hpp and a one-line message when the node refuses or vanishes.
//
// When the job moves to another node, the anchor is the single decider of the move: the old
// shepherd hands its stream off (`migrating`, `handoff`), and the anchor then accepts either the
// old shepherd's `resume` or the `attach` of a new shepherd whose stream the home daemon passes
// to it on `control_fd`, whichever comes first, and rejects the other (anchor.cpp has the races;
// docs/protocol.md the frames). Meanwhile it holds stdin and signals and counts every byte, so
// that nothing is lost or repeated across the switch.
//
// Our stdin/stdout/stderr stay in blocking mode (they are usually shared with the shell, which
// must not find them non-blocking afterwards), so each direction has a thread of its own: one
// reads the streams and writes our stdout/stderr (and decides moves), one reads our stdin and
// writes the stream, and the calling thread handles signals.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"

namespace osmo::run {

// No byte and no heartbeat from the node for this long while we wait for one: the node is dead.
// The shepherd sends a heartbeat after 1 s of silence, so this tolerates a few lost seconds.
inline constexpr int kAnchorDeadAfterMs = 5000;

// How long a move may leave the job without a live stream: after `migrating` the old node may be
// silent this long between frames (the freeze, the final copy), and after `handoff` the anchor
// waits this long past the old stream's last sign of life (its heartbeats while it waits, or its
// break) for the move to be settled by `resume` or `attach`; then the job is lost (252). 30 s
// covers a stop-and-copy of several GiB and a restore at the target with a wide margin, and is
// short enough that a caller whose job died in a failed move is told within half a minute.
inline constexpr int kHandoffWaitMs = 30'000;

struct AnchorOptions {
  int in_fd = 0;
  int out_fd = 1;
  int err_fd = 2;
  // Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2, SIGTSTP, SIGCONT to the job. Changes
  // the signal mask of the calling process; off in unit tests.
  bool forward_signals = true;
  bool verbose = false;
  std::string node;  // the node we expect to run the job, for messages before it says so
  // The connection on which the home daemon passes the streams of shepherds that attach to this
  // job after a move: lines {"attach": {...}} with the stream as SCM_RIGHTS (run_service.hpp).
  // -1: none (the job can then only resume where it is). Not owned.
  int control_fd = -1;
  // Called (at most once a second) after control_fd broke, e.g. the home daemon restarted: returns
  // a new registered connection, or an invalid fd to be tried again later.
  std::function<UniqueFd()> reregister;
  int handoff_wait_ms = kHandoffWaitMs;
  // The job has a pty (JobSpec::tty). term_fd: the caller's terminal, whose window size the job
  // follows (SIGWINCH); -1 if none. tty_out_fd: where the pty's output (`tty` frames) goes; -1:
  // out_fd. raw_fd: the terminal to keep in raw mode while the job runs (our stdin, when the job's
  // stdin is the pty); -1: none, then Ctrl-C and Ctrl-Z are signals as without a pty.
  int term_fd = -1;
  int tty_out_fd = -1;
  int raw_fd = -1;
  bool raw_output = true;  // the job's stdout is the pty (RawTerminal's `output`)
  // A spread deputy (docs/spread.md) forwards every signal it can catch: these besides the
  // usual ones (sent to the job process, or its group when the terminal generated them).
  std::vector<int> extra_signals;
  // If set: the signal that killed the job (0 if it exited, or its end is unknown), so that a
  // deputy can die of the same signal rather than exit 128+N.
  int* exit_signal = nullptr;
};

// Runs until the job ends or the stream fails; returns the exit status `osmo run` should have.
int run_anchor(UniqueFd stream, const AnchorOptions& options);

}  // namespace osmo::run
