// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo mon`'s model (see model.hpp).
#include "mon/model.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace osmo::mon {

namespace {

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

double num(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::int64_t integer(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<std::int64_t>() : 0;
}

// A job's short name for the log: the program's base name.
std::string program(const JobRow& j) {
  std::string first = j.cmd.substr(0, j.cmd.find(' '));
  auto slash = first.rfind('/');
  return slash == std::string::npos ? first : first.substr(slash + 1);
}

}  // namespace

std::vector<NodeRow> nodes_from_json(const nlohmann::json& nodes) {
  std::vector<NodeRow> out;
  if (!nodes.is_array()) return out;
  for (const auto& n : nodes) {
    if (!n.is_object()) continue;
    NodeRow r;
    r.name = str(n, "name");
    r.state = str(n, "state");
    if (n.value("draining", false) && r.state == "alive") r.state = "draining";
    r.self = n.value("self", false);
    if (auto it = n.find("load"); it != n.end() && it->is_number()) r.load = it->get<double>();
    r.cpus = num(n, "cpus");
    r.speed = num(n, "speed");
    r.mem_free_mb = integer(n, "mem_free_mb");
    r.mem_total_mb = integer(n, "mem_total_mb");
    r.jobs = integer(n, "jobs");
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const NodeRow& a, const NodeRow& b) { return a.name < b.name; });
  return out;
}

std::vector<JobRow> jobs_from_json(const nlohmann::json& reply) {
  std::vector<JobRow> out;
  if (!reply.is_object() || !reply.contains("jobs") || !reply["jobs"].is_array()) return out;
  for (const auto& j : reply["jobs"]) {
    if (!j.is_object()) continue;
    JobRow r;
    r.id = str(j, "id");
    r.owner = str(j, "owner");
    r.home = str(j, "home");
    r.node = str(j, "node");
    r.state = str(j, "state");
    r.cmd = str(j, "cmd");
    r.pid = integer(j, "pid");
    r.cpu_s = num(j, "cpu_s");
    r.rss_mb = num(j, "rss_mb");
    r.migrations = integer(j, "migrations");
    r.started_unix_ms = integer(j, "started_unix_ms");
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Event> diff(const Snapshot& before, const Snapshot& after, std::int64_t unix_ms) {
  std::vector<Event> out;
  auto add = [&](std::string text) { out.push_back(Event{unix_ms, std::move(text)}); };
  std::map<std::string, const NodeRow*> old_nodes;
  for (const auto& n : before.nodes) old_nodes[n.name] = &n;
  for (const auto& n : after.nodes) {
    auto it = old_nodes.find(n.name);
    if (it == old_nodes.end()) {
      if (!before.nodes.empty()) add(fmt::format("node {} joined ({})", n.name, n.state));
    } else if (it->second->state != n.state) {
      add(fmt::format("node {} {} -> {}", n.name, it->second->state, n.state));
    }
  }
  if (!before.have_jobs || !after.have_jobs) return out;
  std::map<std::string, const JobRow*> old_jobs, new_jobs;
  for (const auto& j : before.jobs) old_jobs[j.id] = &j;
  for (const auto& j : after.jobs) new_jobs[j.id] = &j;
  for (const auto& [id, j] : new_jobs) {
    auto it = old_jobs.find(id);
    if (it == old_jobs.end()) {
      add(fmt::format("placed {} ({}) on {}, home {}", id, program(*j), j->node, j->home));
    } else if (it->second->node != j->node || it->second->migrations != j->migrations) {
      add(fmt::format("migrated {} ({}) {} -> {}", id, program(*j), it->second->node, j->node));
    }
  }
  for (const auto& [id, j] : old_jobs)
    if (new_jobs.find(id) == new_jobs.end()) add(fmt::format("ended {} ({}) on {}", id, program(*j), j->node));
  return out;
}

void EventLog::add(std::vector<Event> events) {
  for (auto& e : events) {
    events_.push_back(std::move(e));
    if (events_.size() > capacity_) events_.pop_front();
  }
}

const char* to_string(JobSort s) {
  switch (s) {
    case JobSort::kCpu: return "cpu";
    case JobSort::kRss: return "memory";
    case JobSort::kNode: return "node";
    case JobSort::kId: return "id";
    case JobSort::kMigrations: return "migrations";
    case JobSort::kAge: return "age";
  }
  return "?";
}

JobSort next(JobSort s) {
  switch (s) {
    case JobSort::kCpu: return JobSort::kRss;
    case JobSort::kRss: return JobSort::kNode;
    case JobSort::kNode: return JobSort::kId;
    case JobSort::kId: return JobSort::kMigrations;
    case JobSort::kMigrations: return JobSort::kAge;
    case JobSort::kAge: return JobSort::kCpu;
  }
  return JobSort::kCpu;
}

void sort_jobs(std::vector<JobRow>& jobs, JobSort by, bool reverse) {
  // The natural order of each key first (most CPU, most memory, oldest first); ties by id so that
  // rows do not jump between two looks.
  auto less = [by](const JobRow& a, const JobRow& b) {
    switch (by) {
      case JobSort::kCpu: if (a.cpu_s != b.cpu_s) return a.cpu_s > b.cpu_s; break;
      case JobSort::kRss: if (a.rss_mb != b.rss_mb) return a.rss_mb > b.rss_mb; break;
      case JobSort::kNode: if (a.node != b.node) return a.node < b.node; break;
      case JobSort::kId: break;
      case JobSort::kMigrations: if (a.migrations != b.migrations) return a.migrations > b.migrations; break;
      case JobSort::kAge: if (a.started_unix_ms != b.started_unix_ms) return a.started_unix_ms < b.started_unix_ms; break;
    }
    return a.id < b.id;
  };
  std::stable_sort(jobs.begin(), jobs.end(), less);
  if (reverse) std::reverse(jobs.begin(), jobs.end());
}

}  // namespace osmo::mon
