// SPDX-License-Identifier: GPL-2.0-or-later
// The jobs of this node as the balancer sees them: each second, the job table (run::list_jobs:
// records, CPU time, resident memory) becomes one policy::JobInfo per job, with what only
// watching over time tells: how long the job has been on this node (first seen), the CPU share
// it contributes (1 when the kernel has it runnable, else CPU time used per second of wall time
// scaled by the node's contention), and
// the stdio traffic of its relay (the shepherd's read + written bytes, /proc/PID/io). Once per
// job, its spec (from its shepherd, `describe`) says where its home is, whether it is pinned
// (--no-migrate) and whether it has a terminal (interactive).
//
// Kept apart from the loop so that the loop's rules stay in src/policy and this file is only
// measurement. Not thread-safe: the balancing thread owns it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "env/clock.hpp"
#include "policy/balance.hpp"
#include "run/job_table.hpp"

namespace osmo::balance {

struct SampledJob {
  std::string id;          // the cluster id (hex); policy::JobInfo::id is its value
  policy::JobInfo info;
  bool described = false;  // the shepherd told its spec (home, pinned, terminal)
};

// Whether a job spec (JSON, run::to_json) has a terminal. The tty branch (issue 12) adds `tty`
// (an object) to the spec of a job started from a terminal; a spec without it is not interactive.
bool spec_is_interactive(const nlohmann::json& spec);

class JobSampler {
 public:
  // `describe` returns a job's spec (migrate::describe_local_job in the daemon; tests fake it).
  using Describe = std::function<Result<nlohmann::json>(const std::string& id)>;
  // `movable` says whether the migration could move the job now (migrate::check_movable: /proc
  // only); a job it cannot move is not offered (it would be refused after the reservation) and is
  // not counted as a guest to drain. Empty: every job is.
  using Movable = std::function<bool(const run::JobRecord& rec)>;
  JobSampler(std::string node_name, Describe describe, Movable movable = {})
      : node_(std::move(node_name)), describe_(std::move(describe)), movable_(std::move(movable)) {}

  // Turns the listing into JobInfos at monotonic time `now` (and wall time `now_unix_ms`, for the
  // jobs' ages), on a node whose smoothed runnable count is `runnable` over capacity `cap`.
  std::vector<SampledJob> update(const std::vector<run::JobInfo>& jobs, env::TimeMs now,
                                 std::int64_t now_unix_ms, double runnable, double cap);

  // A move of `id` was refused or failed at `now` (policy::JobInfo::last_attempt_ms).
  void attempt_failed(const std::string& id, env::TimeMs now);

  // Guest jobs (home elsewhere) at the last update that a drain must move (not pinned).
  std::uint32_t guests_to_move() const { return guests_to_move_; }

 private:
  struct Track {
    env::TimeMs first_seen_ms = 0;
    env::TimeMs last_ms = 0;
    double last_cpu_s = 0;
    std::uint64_t last_io_bytes = 0;
    bool io_known = false;
    double cpu_share = 1.0;         // smoothed
    double relay_bytes_per_s = 0;   // smoothed
    std::optional<env::TimeMs> last_attempt_ms;
    bool described = false;
    int describe_failures = 0;
    std::string home;
    bool pinned = false;
    bool interactive = false;
  };

  std::string node_;
  Describe describe_;
  Movable movable_;
  std::map<std::string, Track> tracks_;
  std::uint32_t guests_to_move_ = 0;
};

// rchar + wchar of process `pid` (/proc/PID/io); nullopt when it cannot be read.
std::optional<std::uint64_t> process_io_bytes(pid_t pid);

}  // namespace osmo::balance
