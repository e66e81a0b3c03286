// SPDX-License-Identifier: GPL-2.0-or-later
// The two halves of a dump and of a restore, as dump.cpp and restore.cpp sequence them, for
// checkpoint()/restore() (which run both halves at once) and for the transaction objects
// HeldProcess and PendingRestore (transaction.cpp, which keep the first half's result between
// the two). Internal to the engine.
#pragma once

#include <chrono>

#include <csignal>
#include <optional>
#include <vector>

#include "ckpt/ckpt.hpp"
#include "ckpt/kinds.hpp"
#include "ckpt/ptrace.hpp"
#include "ckpt/restorer/init.hpp"

namespace osmo::ckpt {

// A process whose complete image (END included) was written: put back exactly as it was when
// seized (scratch page gone, registers, mask, SIGTRAP's disposition) but still stopped and
// seized by the thread that dumped it, which alone may release it.
// A tree's processes are all held (tracees[0] is the main process), and released together.
struct FrozenDump {
  std::vector<Tracee> tracees;
  std::chrono::steady_clock::time_point frozen_at;
  // Every process continues (the first error is returned, every process is still released).
  Status detach_all() {
    Status first = ok_status();
    for (Tracee& t : tracees)
      if (Status s = t.detach(); !s.ok() && first.ok()) first = std::move(s);
    return first;
  }
  // SIGKILL to every process while all are still stopped: none runs another instruction.
  void kill_all() {
    for (Tracee& t : tracees) ::kill(t.pid(), SIGKILL);
    for (Tracee& t : tracees) t.kill_now();
  }
};

// One process being dumped (dump.cpp), alone or as one of a tree (tree.cpp): seized, collected,
// its sections written, then put back as it was when seized (still stopped).
struct ProcDump {
  pid_t pid = -1;
  const CheckpointOptions* options = nullptr;
  ProcessImage img;
  DumpContext c;
  std::optional<Tracee> tracee;
  std::chrono::steady_clock::time_point frozen_at;
  bool armed_regs = false;  // registers and mask were saved: put_back() sets them again

  ProcDump() = default;
  ProcDump(const ProcDump&) = delete;  // c points into this object
  ProcDump& operator=(const ProcDump&) = delete;
  Status seize();
  Status collect();
  Status write_metadata(ImageWriter& w);
  Status write_blobs(ImageWriter& w);
  Status write_pages(ImageWriter& w, CheckpointStats* stats);
  Status put_back();          // still stopped, nothing of ours left in it
  void release_unchanged();   // put back and detached (it runs on as if never touched)
};

// The tree form of dump_and_freeze (tree.cpp): every process of the tree (options.scope) is
// frozen, the tree image written, every process put back and still stopped.
Result<FrozenDump> dump_tree_and_freeze(pid_t root, int out_fd, const CheckpointOptions& options,
                                        CheckpointStats* stats);
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
  std::vector<Tracee> tracees;  // every live process of the tree, the main one first
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
