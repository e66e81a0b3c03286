// SPDX-License-Identifier: GPL-2.0-or-later
// The jobs a node hosts, as files: <state_dir>/jobs/<id>.json, written by each job's shepherd when
// the job starts and removed when it ends. The daemon keeps no job state in memory, so a restarted
// daemon sees the same jobs; a record whose shepherd is gone (crash, kill -9) is recognised by the
// process start time it carries and removed when listed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace osmo::run {

struct JobRecord {
  std::string id;
  std::string home;
  std::string node;
  uid_t uid = 0;
  std::string cmd;
  pid_t shepherd_pid = 0;
  std::uint64_t shepherd_start = 0;  // /proc/<pid>/stat starttime, guards against pid reuse
  pid_t init_pid = 0;
  pid_t job_pid = 0;                 // as the node sees it (outside the job's PID namespace)
  std::uint64_t job_start = 0;
  std::int64_t started_unix_ms = 0;
  int migrations = 0;
  // The job's terminal on its node ("pts/5"), empty if it has none. A job with a terminal is
  // interactive: balancing treats it so. A move gives it a new pty on its new node.
  std::string tty;
  std::string parent;  // a sub-job's job (docs/spread.md); empty for a job of `osmo run`
  bool interactive() const { return !tty.empty(); }
  // Pinned by `osmo run --no-migrate`: the balancer never moves it, `osmo migrate` only with
  // --force; `osmo ps` shows it as not movable.
  bool no_migrate = false;
};

// What `osmo ps` shows for one job.
struct JobInfo {
  JobRecord rec;
  std::string user;
  std::string state;  // "running", "sleeping", "stopped", "zombie", ...
  double cpu_s = 0;   // user + system time of the job process and its reaped children
  double rss_mb = 0;
};

nlohmann::json to_json(const JobInfo& info);

std::filesystem::path jobs_dir(const std::filesystem::path& state_dir);
Status write_job_record(const std::filesystem::path& state_dir, const JobRecord& rec);
void remove_job_record(const std::filesystem::path& state_dir, const std::string& id);

// What the job record alone says about moving the job (the run side's part of `osmo migrate
// --check` and of `movable`/`why_not` in `osmo ps --json`), before the migration code looks at
// the processes. Nothing refuses today (a job with a terminal moves with it).
Status record_movable(const JobRecord& rec);

// Live jobs of this node; stale records are deleted on the way.
Result<std::vector<JobInfo>> list_jobs(const std::filesystem::path& state_dir);

// Sends `signo` to the job `id` (exact id, or a unique prefix) if it runs here. Returns false when
// it does not. `requester_uid` must own the job unless it is root.
Result<bool> signal_job(const std::filesystem::path& state_dir, const std::string& id, int signo,
                        uid_t requester_uid);

}  // namespace osmo::run
