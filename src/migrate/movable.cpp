// SPDX-License-Identifier: GPL-2.0-or-later
// Movability of a job (see movable.hpp).
#include "migrate/movable.hpp"

#include <dirent.h>

#include <fmt/format.h>

#include "ckpt/ckpt.hpp"
#include "platform/linux/sysfs_io.hpp"

namespace osmo::migrate {
namespace {

// Children of every thread of `pid` (/proc/PID/task/TID/children).
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  auto tasks = platform::list_directory(fmt::format("/proc/{}/task", pid), /*only_dirs=*/true);
  if (!tasks.ok()) return out;
  for (const auto& t : *tasks) {
    auto text = platform::read_text_file(fmt::format("/proc/{}/task/{}/children", pid, t));
    if (!text.ok()) continue;
    std::size_t i = 0;
    while (i < text->size()) {
      std::size_t j = text->find(' ', i);
      if (j == std::string::npos) j = text->size();
      if (j > i) out.push_back(static_cast<pid_t>(std::stol(text->substr(i, j - i))));
      i = j + 1;
    }
  }
  return out;
}

}  // namespace

Status check_movable(const run::JobRecord& rec) {
  if (rec.job_pid <= 0 || run::process_start_time(rec.job_pid) != rec.job_start)
    return make_error("its process has exited");
  // The engine carries one process. A job's PID namespace holds its init and the job; anything
  // else (children, a pipeline, orphans adopted by init) would be lost, so it is refused.
  auto under_init = children_of(rec.init_pid);
  std::erase(under_init, rec.job_pid);
  auto under_job = children_of(rec.job_pid);
  under_job.insert(under_job.end(), under_init.begin(), under_init.end());
  if (!under_job.empty())
    return make_error("it is a tree of {} processes (pids {} as this node sees them); osmo moves "
                      "single-process jobs only for now",
                      under_job.size() + 1, fmt::join(under_job, ", "));
  ckpt::CheckpointOptions opts;  // pipes and ttys: the job's stdio, carried by stand-ins
  return ckpt::preflight(rec.job_pid, opts);
}

}  // namespace osmo::migrate
