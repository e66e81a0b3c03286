// SPDX-License-Identifier: GPL-2.0-or-later
// The two halves of a dump and of a restore, as dump.cpp and restore.cpp sequence them, for
// checkpoint()/restore() (which run both halves at once) and for the transaction objects
// HeldProcess and PendingRestore (transaction.cpp, which keep the first half's result between
// the two). Internal to the engine.
#pragma once

#include <chrono>

#include "ckpt/ckpt.hpp"
#include "ckpt/ptrace.hpp"
#include "ckpt/restorer/init.hpp"

namespace osmo::ckpt {

// A process whose complete image (END included) was written: put back exactly as it was when
// seized (scratch page gone, registers, mask, SIGTRAP's disposition) but still stopped and
// seized by the thread that dumped it, which alone may release it.
struct FrozenDump {
  Tracee tracee;
  std::chrono::steady_clock::time_point frozen_at;
};
// The refusal checks (/proc only), then the dump up to that point. On any failure the process is
// released first (resumed exactly where it was, untraced). Errors carry no "cannot checkpoint"
// prefix.
Status preflight_checks(pid_t pid, const CheckpointOptions& options);
Result<FrozenDump> dump_and_freeze(pid_t pid, int out_fd, const CheckpointOptions& options,
                                   CheckpointStats* stats);

// A process fully restored and still stopped, traced by the thread that restored it; init waits
// for kGo (restorer/messages.hpp) and dies with that thread until then.
struct HeldRestore {
  restorer::InitProcess init;
  Tracee tracee;
  UniqueFd pidfd;
  RestoredProcess info;  // info.pidfd is -1: the pidfd stays here until the commit
  std::chrono::steady_clock::time_point started_at;
};
// The restore up to the commit; on failure nothing is left. Errors carry no "cannot restore"
// prefix.
Result<HeldRestore> restore_until_commit(int in_fd, const RestoreOptions& options);
// The commit (timeline in restore.cpp), on the thread that restored it. On failure the caller
// must abort_restore().
Status commit_restore(HeldRestore& held);
// Kills the process and init, reaps init: nothing is left. On the thread that restored it.
void abort_restore(HeldRestore& held);

}  // namespace osmo::ckpt
