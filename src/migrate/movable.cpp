// SPDX-License-Identifier: GPL-2.0-or-later
// Movability of a job (see movable.hpp).
#include "migrate/movable.hpp"

#include <fmt/format.h>

#include "ckpt/ckpt.hpp"
#include "platform/linux/proc_files.hpp"

namespace osmo::migrate {

Status check_movable(const run::JobRecord& rec) {
  OSMO_TRY(run::record_movable(rec));  // a job with a terminal cannot move yet (run/job_table.hpp)
  if (rec.job_pid <= 0 || platform::process_start_ticks(rec.job_pid) != rec.job_start)
    return make_error("its process has exited");
  // The engine carries one process. A job's PID namespace holds its init and the job; anything
  // else (children, a pipeline, orphans adopted by init) would be lost, so it is refused.
  auto under_init = platform::process_children(rec.init_pid);
  std::erase(under_init, rec.job_pid);
  auto under_job = platform::process_children(rec.job_pid);
  under_job.insert(under_job.end(), under_init.begin(), under_init.end());
  if (!under_job.empty())
    return make_error("it is a tree of {} processes (pids {} as this node sees them); osmo moves "
                      "single-process jobs only for now",
                      under_job.size() + 1, fmt::join(under_job, ", "));
  ckpt::CheckpointOptions opts;  // pipes and ttys: the job's stdio, carried by stand-ins
  return ckpt::preflight(rec.job_pid, opts);
}

}  // namespace osmo::migrate
