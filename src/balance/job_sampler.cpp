// SPDX-License-Identifier: GPL-2.0-or-later
// Job table -> policy::JobInfo (see job_sampler.hpp).
#include "balance/job_sampler.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "platform/linux/sysfs_io.hpp"

namespace osmo::balance {
namespace {

// Weight of the newest interval in the smoothed CPU share and relay rate: two seconds of memory
// at one sample a second, so a job that just went to sleep stops counting quickly.
constexpr double kNewSampleWeight = 0.5;
// A shepherd that cannot describe its job (busy, ending) is asked again next time; after this
// many failures the job is left alone (it is not movable anyway if its shepherd does not answer).
constexpr int kMaxDescribeFailures = 5;

}  // namespace

bool spec_is_interactive(const nlohmann::json& spec) {
  return spec.contains("tty") && !spec["tty"].is_null();
}

std::optional<std::uint64_t> process_io_bytes(pid_t pid) {
  auto text = platform::read_text_file(fmt::format("/proc/{}/io", pid));
  if (!text.ok()) return std::nullopt;
  std::uint64_t rchar = 0, wchar = 0;
  bool r = false, w = false;
  std::size_t pos = 0;
  while (pos < text->size()) {
    const std::size_t end = std::min(text->find('\n', pos), text->size());
    const std::string line = text->substr(pos, end - pos);
    unsigned long long v = 0;
    if (std::sscanf(line.c_str(), "rchar: %llu", &v) == 1) {
      rchar = v;
      r = true;
    } else if (std::sscanf(line.c_str(), "wchar: %llu", &v) == 1) {
      wchar = v;
      w = true;
    }
    pos = end + 1;
  }
  if (!r || !w) return std::nullopt;
  return rchar + wchar;
}

std::vector<SampledJob> JobSampler::update(const std::vector<run::JobInfo>& jobs, env::TimeMs now,
                                           std::int64_t now_unix_ms, double runnable, double cap) {
  std::vector<SampledJob> out;
  std::set<std::string> seen;
  guests_to_move_ = 0;
  for (const auto& j : jobs) {
    const auto& rec = j.rec;
    if (j.state == "exiting" || j.state == "zombie") continue;
    std::uint64_t numeric_id = 0;
    if (rec.id.empty() || rec.id.size() > 16 ||
        rec.id.find_first_not_of("0123456789abcdef") != std::string::npos)
      continue;  // not an id we made (new_job_id: 12 hex digits)
    numeric_id = std::stoull(rec.id, nullptr, 16);
    seen.insert(rec.id);
    auto [it, fresh] = tracks_.try_emplace(rec.id);
    Track& t = it->second;
    if (fresh) {
      t.first_seen_ms = now;
      t.last_ms = now;
      t.last_cpu_s = j.cpu_s;
      t.home = rec.home;
    } else if (now > t.last_ms) {
      const double dt_s = static_cast<double>(now - t.last_ms) / 1000.0;
      // CPU seconds per second is what the job got, not what it wants: under contention (R
      // runnable tasks on cap CPUs) a CPU-bound task gets cap/R. Scaled back by R/cap, a busy
      // task counts as 1 whatever the contention, a sleeping one as 0.
      const double rate = std::max(0.0, j.cpu_s - t.last_cpu_s) / dt_s;
      const double contention = cap > 0 ? std::max(runnable, cap) / cap : 1.0;
      // A job the kernel has runnable (state R) wants a whole CPU, whatever it got: on a machine
      // busier than the node's quota says (the testbed on a shared VM) even the scaled rate falls
      // short (0.43 for a busy loop), and the load it weighs is that of one runnable task.
      const double share = j.state == "running" ? 1.0 : std::clamp(rate * contention, 0.0, 1.0);
      t.cpu_share += kNewSampleWeight * (share - t.cpu_share);
      t.last_cpu_s = j.cpu_s;
      if (auto io = process_io_bytes(rec.shepherd_pid)) {
        if (t.io_known && *io >= t.last_io_bytes) {
          const double bps = static_cast<double>(*io - t.last_io_bytes) / dt_s;
          t.relay_bytes_per_s += kNewSampleWeight * (bps - t.relay_bytes_per_s);
        }
        t.last_io_bytes = *io;
        t.io_known = true;
      }
      t.last_ms = now;
    }
    if (!t.described && t.describe_failures < kMaxDescribeFailures) {
      auto spec = describe_(rec.id);
      if (spec.ok()) {
        t.described = true;
        t.home = spec->value("home", rec.home);
        t.pinned = spec->value("no_migrate", false);
        t.interactive = spec_is_interactive(*spec);
      } else {
        ++t.describe_failures;
      }
    }
    SampledJob s;
    s.id = rec.id;
    s.described = t.described;
    policy::JobInfo& info = s.info;
    info.id = numeric_id;
    info.age_ms = std::max<std::int64_t>(0, now_unix_ms - rec.started_unix_ms);
    info.residence_ms = now - t.first_seen_ms;
    info.cpu_share = t.cpu_share;
    info.mem_mb = static_cast<std::uint64_t>(std::max(0.0, j.rss_mb) + 0.5);
    info.migrations = rec.migrations;
    info.cpu_used_ms = static_cast<env::TimeMs>(j.cpu_s * 1000.0);
    info.home = t.home;
    info.relay_bytes_per_s = t.relay_bytes_per_s;
    info.interactive = t.interactive;
    // A job whose spec we could not read is treated as pinned: we do not know whether it is.
    // So is a job the migration cannot move now (several processes, threads, ...).
    const bool movable = !movable_ || movable_(rec);
    info.pinned = t.pinned || !t.described || !movable;
    info.last_attempt_ms = t.last_attempt_ms;
    if (!info.home.empty() && info.home != node_ && !t.pinned && movable) ++guests_to_move_;
    out.push_back(std::move(s));
  }
  std::erase_if(tracks_, [&](const auto& kv) { return seen.count(kv.first) == 0; });
  return out;
}

void JobSampler::attempt_failed(const std::string& id, env::TimeMs now) {
  auto it = tracks_.find(id);
  if (it != tracks_.end()) it->second.last_attempt_ms = now;
}

}  // namespace osmo::balance
