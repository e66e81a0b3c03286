// SPDX-License-Identifier: GPL-2.0-or-later
// The files a job needs at the target, checked there before the job is frozen. A migrated job
// reopens its files, its executable and its mapped libraries by path (docs/migration.md: the same
// path must hold the same file on both nodes, e.g. a shared file system); a file that is missing
// or differs at the target would make the restore fail after the freeze, so the target daemon
// refuses the move up front, naming the file.
#pragma once

#include <sys/types.h>

#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace osmo::migrate {

// At the source: the regular files of the job's processes (open fds, executables, file mappings),
// each once, with its size and mtime as this node sees them, and whether any process may write to
// it. Reads /proc only. A process that exits meanwhile is skipped (the engine's freeze surveys the
// tree again).
Result<nlohmann::json> job_files(const std::vector<pid_t>& pids);

// Every process of the job: the descendants of the job's init (its PID 1), init itself excluded.
std::vector<pid_t> job_processes(pid_t init_pid);

// At the target: ok, or why not ("/data/in.txt is missing here", "... differs here (size A, B at
// the source)"). Files the job may write are only required to exist (they change while it runs).
Status check_files_here(const nlohmann::json& files);

}  // namespace osmo::migrate
