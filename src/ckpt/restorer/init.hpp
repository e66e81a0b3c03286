// SPDX-License-Identifier: GPL-2.0-or-later
// init: PID 1 of the new pid namespace, and the parent of every process the restore builds.
// It makes mounts private, mounts a fresh /proc, enters a time namespace with the image's
// clock offsets, builds the chain down to the new process (chain.hpp), then waits for the
// caller's verdict (kGo, messages.hpp) with PR_SET_PDEATHSIG set, so that a caller that dies
// takes the half-built namespace with it. After the verdict it no longer depends on the
// caller: it reaps, forwards SIGINT/TERM/HUP/USR1/USR2/QUIT to the process, and exits with its
// status (its exit code, or 128+N when killed by signal N).
#pragma once

#include <sys/types.h>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "ckpt/restorer/child.hpp"

namespace osmo::ckpt::restorer {

struct InitProcess {
  pid_t pid = -1;  // in the caller's pid namespace; a child of the caller
  UniqueFd sock;   // the caller's end of the message pair
};

// Creates init (clone3 CLONE_NEWPID|CLONE_NEWNS) running init_main. PR_SET_PDEATHSIG ties it to
// the calling *thread* (prctl(2): the parent is the thread that created it) until kGo.
Result<InitProcess> start_init(ChildPlan& plan);

}  // namespace osmo::ckpt::restorer
