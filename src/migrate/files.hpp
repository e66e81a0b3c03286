// SPDX-License-Identifier: GPL-2.0-or-later
// The files a job needs at the target, checked there before the job is frozen. A migrated job
// reopens its files, its executable and its mapped libraries by path (docs/migration.md: the same
// path must hold the same file on both nodes, e.g. a shared file system); a file that is missing
// or differs at the target would make the restore fail after the freeze, so the target daemon
// refuses the move up front, naming the file.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace osmo::migrate {

// At the source: the job's regular files (open fds, the executable, file mappings), each with its
// size and mtime as this node sees them, and whether the job may write to it. Reads /proc only.
Result<nlohmann::json> job_files(pid_t pid);

// At the target: ok, or why not ("/data/in.txt is missing here", "... differs here (size A, B at
// the source)"). Files the job may write are only required to exist (they change while it runs).
Status check_files_here(const nlohmann::json& files);

}  // namespace osmo::migrate
