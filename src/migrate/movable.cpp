// SPDX-License-Identifier: GPL-2.0-or-later
// Movability of a job (see movable.hpp).
#include "migrate/movable.hpp"

#include "ckpt/ckpt.hpp"
#include "platform/linux/proc_files.hpp"
#include "platform/linux/user_ns.hpp"

namespace osmo::migrate {

Status check_movable(const run::JobRecord& rec) {
  // Checkpoint and restore need root: ptrace and /proc/PID/map_files of the job, and its pids
  // recreated with clone3's set_tid (docs/run.md, "Without root").
  if (platform::jobs_need_user_namespace())
    return make_error("this node's daemon runs without root; moving a job needs root on both nodes");
  OSMO_TRY(run::record_movable(rec));
  if (rec.job_pid <= 0 || platform::process_start_ticks(rec.job_pid) != rec.job_start)
    return make_error("its process has exited");
  // The job is its whole process tree: every process of its PID namespace but the namespace's
  // init (a pipeline, workers, orphans adopted by init). The engine checks each process and a
  // refusal names the one it refuses ("process 12 (worker): it has 2 threads ...").
  ckpt::CheckpointOptions opts;  // pipes and ttys: the job's stdio, carried by stand-ins
  opts.scope = ckpt::TreeScope::kNamespace;
  // The target gives stand-ins for the job's stdio (fds 0-2) only: a pipe to a program outside
  // the job is refused now, before the freeze, not by the target's restore.
  opts.refuse_stand_ins_beyond_stdio = true;
  // A job with a terminal: its pty travels (the target makes a new one, target.cpp), so its fds on
  // /dev/pts/N need no stand-in, whatever their number (a shell's fd 255).
  opts.terminals_travel = true;
  return ckpt::preflight(rec.job_pid, opts);
}

}  // namespace osmo::migrate
