// SPDX-License-Identifier: GPL-2.0-or-later
// What `osmo mon` shows, apart from how it is drawn: the cluster's nodes and jobs as the local
// daemon reports them (`nodes`, `jobs.list`), and the events seen between two looks (placements,
// migrations, jobs ending, nodes changing state). Pure: built from JSON, so the tests feed it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace osmo::mon {

struct NodeRow {
  std::string name;
  std::string state;  // alive, suspect, dead, left; "draining" when the node drains
  bool self = false;
  std::optional<double> load;  // capacity-normalised; none before the first gossiped load
  double cpus = 0;
  double speed = 0;
  std::int64_t mem_free_mb = 0;
  std::int64_t mem_total_mb = 0;
  std::int64_t jobs = 0;
};

struct JobRow {
  std::string id, owner, home, node, state, cmd;
  std::int64_t pid = 0;
  double cpu_s = 0, rss_mb = 0;
  std::int64_t migrations = 0;
  std::int64_t started_unix_ms = 0;
};

struct Snapshot {
  std::vector<NodeRow> nodes;  // sorted by name
  std::vector<JobRow> jobs;    // in the daemon's order
  bool have_jobs = false;      // jobs were asked for in this look
};

// From the replies of the control operations `nodes` (an array) and `jobs.list` ({"jobs": [...]}).
std::vector<NodeRow> nodes_from_json(const nlohmann::json& nodes);
std::vector<JobRow> jobs_from_json(const nlohmann::json& reply);

struct Event {
  std::int64_t unix_ms = 0;
  std::string text;  // "migrated 3f2a (xz) n1 -> n2", "n3 alive -> suspect", ...
};

// The events between two looks, in a stable order (nodes, then jobs by id). Jobs are compared only
// when both looks have them.
std::vector<Event> diff(const Snapshot& before, const Snapshot& after, std::int64_t unix_ms);

// The last `capacity` events, newest last.
class EventLog {
 public:
  explicit EventLog(std::size_t capacity) : capacity_(capacity) {}
  void add(std::vector<Event> events);
  const std::deque<Event>& events() const { return events_; }

 private:
  std::size_t capacity_;
  std::deque<Event> events_;
};

enum class JobSort { kCpu, kRss, kNode, kId, kMigrations, kAge };
const char* to_string(JobSort s);
JobSort next(JobSort s);
void sort_jobs(std::vector<JobRow>& jobs, JobSort by, bool reverse);

}  // namespace osmo::mon
