// SPDX-License-Identifier: GPL-2.0-or-later
// Job records on disk and the live figures `osmo ps` shows (see job_table.hpp).
#include "run/job_table.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <system_error>

#include <fmt/format.h>

#include "base/fd_io.hpp"
#include "base/unique_fd.hpp"
#include "platform/linux/pidfd.hpp"
#include "platform/linux/proc_files.hpp"
#include "platform/linux/process.hpp"

namespace osmo::run {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* state_name(char s) {
  switch (s) {
    case 'R': return "running";
    case 'S': return "sleeping";
    case 'D': return "disk-wait";
    case 'T': return "stopped";
    case 't': return "traced";
    case 'Z': return "zombie";
    case 'X': return "dead";
    case 'I': return "idle";
    default: return "unknown";
  }
}

json record_to_json(const JobRecord& r) {
  return json{{"id", r.id},
              {"home", r.home},
              {"node", r.node},
              {"uid", r.uid},
              {"cmd", r.cmd},
              {"shepherd_pid", r.shepherd_pid},
              {"shepherd_start", r.shepherd_start},
              {"init_pid", r.init_pid},
              {"job_pid", r.job_pid},
              {"job_start", r.job_start},
              {"started_unix_ms", r.started_unix_ms},
              {"migrations", r.migrations},
              {"tty", r.tty},
              {"no_migrate", r.no_migrate},
              {"parent", r.parent}};
}

Result<JobRecord> record_from_json(const json& j) {
  JobRecord r;
  try {
    r.id = j.at("id").get<std::string>();
    r.home = j.value("home", "");
    r.node = j.value("node", "");
    r.uid = j.at("uid").get<uid_t>();
    r.cmd = j.value("cmd", "");
    r.shepherd_pid = j.at("shepherd_pid").get<pid_t>();
    r.shepherd_start = j.at("shepherd_start").get<std::uint64_t>();
    r.init_pid = j.value("init_pid", 0);
    r.job_pid = j.at("job_pid").get<pid_t>();
    r.job_start = j.at("job_start").get<std::uint64_t>();
    r.started_unix_ms = j.value("started_unix_ms", std::int64_t{0});
    r.migrations = j.value("migrations", 0);
    r.tty = j.value("tty", "");
    r.no_migrate = j.value("no_migrate", false);
    r.parent = j.value("parent", "");
  } catch (const json::exception& e) {
    return make_error("malformed job record: {}", e.what());
  }
  return r;
}

Result<JobRecord> read_record(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return errno_error("cannot open job record {}", path.string());
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) return make_error("job record {} is not JSON", path.string());
  auto r = record_from_json(j);
  if (!r.ok()) return make_error("{}: {}", path.string(), r.error().message);
  return r;
}

}  // namespace

json to_json(const JobInfo& i) {
  return json{{"id", i.rec.id},         {"owner", i.user},     {"uid", i.rec.uid},
              {"home", i.rec.home},     {"node", i.rec.node},  {"pid", i.rec.job_pid},
              {"state", i.state},       {"cpu_s", i.cpu_s},    {"rss_mb", i.rss_mb},
              {"migrations", i.rec.migrations},                {"cmd", i.rec.cmd},
              {"started_unix_ms", i.rec.started_unix_ms},
              {"interactive", i.rec.interactive()},
              {"pinned", i.rec.no_migrate},
              {"tty", i.rec.tty.empty() ? json(nullptr) : json(i.rec.tty)},
              {"parent", i.rec.parent.empty() ? json(nullptr) : json(i.rec.parent)}};
}

Status record_movable(const JobRecord& rec) {
  // A job with a terminal moves too: its pty's state travels in the image and the target gives
  // it a new pty (docs/run.md "Terminals"). Nothing in a record refuses a move today.
  (void)rec;
  return ok_status();
}

fs::path jobs_dir(const fs::path& state_dir) { return state_dir / "jobs"; }

Status write_job_record(const fs::path& state_dir, const JobRecord& rec) {
  const std::string dir = jobs_dir(state_dir).string();
  const std::string final_path = fmt::format("{}/{}.json", dir, rec.id);
  const std::string tmp = fmt::format("{}/.{}.tmp", dir, rec.id);
  // Plain syscalls: this runs on the job's start path, where every allocation and iostream
  // costs page faults in a freshly forked shepherd.
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid() && errno == ENOENT) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Error{ec.value(), fmt::format("cannot create {}", dir)};
    fd.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  }
  if (!fd.valid()) return errno_error("cannot create job record {}", tmp);
  const std::string text = record_to_json(rec).dump() + "\n";
  if (const IoResult w = write_full(fd.get(), text.data(), text.size()); !w.ok()) {
    ::unlink(tmp.c_str());
    return Error{w.error, fmt::format("cannot write job record {}", tmp)};
  }
  fd.reset();
  // Readers never see a half-written record.
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Error{err, fmt::format("cannot rename {} to {}", tmp, final_path)};
  }
  return ok_status();
}

void remove_job_record(const fs::path& state_dir, const std::string& id) {
  std::error_code ec;
  fs::remove(jobs_dir(state_dir) / (id + ".json"), ec);
}

Result<std::vector<JobInfo>> list_jobs(const fs::path& state_dir) {
  std::vector<JobInfo> out;
  std::error_code ec;
  fs::directory_iterator it(jobs_dir(state_dir), ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    return Error{ec.value(), fmt::format("cannot list {}", jobs_dir(state_dir).string())};
  }
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page_mb = static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
  for (const auto& entry : it) {
    const auto& p = entry.path();
    if (p.extension() != ".json" || p.filename().string().front() == '.') continue;
    auto rec = read_record(p);
    if (!rec.ok()) continue;  // being replaced, or garbage: not a job we can show
    // A record outlives its shepherd only if the shepherd died without cleaning up.
    if (platform::process_start_ticks(rec->shepherd_pid) != rec->shepherd_start) {
      fs::remove(p, ec);
      continue;
    }
    JobInfo info;
    info.rec = *rec;
    if (auto st = platform::read_pid_stat(rec->job_pid); st.ok() && st->start_ticks == rec->job_start) {
      info.state = state_name(st->state);
      info.cpu_s = static_cast<double>(st->utime + st->stime + st->cutime + st->cstime) / tick;
      info.rss_mb = static_cast<double>(st->rss_pages) * page_mb;
    } else {
      info.state = "exiting";  // the job ended; its shepherd is flushing output
    }
    if (const passwd* pw = ::getpwuid(rec->uid); pw != nullptr)
      info.user = pw->pw_name;
    else
      info.user = std::to_string(rec->uid);
    out.push_back(std::move(info));
  }
  return out;
}

Result<bool> signal_job(const fs::path& state_dir, const std::string& id, int signo,
                        uid_t requester_uid) {
  OSMO_ASSIGN_OR_RETURN(auto jobs, list_jobs(state_dir));
  const JobRecord* match = nullptr;
  for (const auto& j : jobs) {
    if (j.rec.id == id) {
      match = &j.rec;
      break;
    }
    if (j.rec.id.rfind(id, 0) == 0) {
      if (match != nullptr) return make_error("job id prefix '{}' is ambiguous", id);
      match = &j.rec;
    }
  }
  if (match == nullptr) return false;
  if (requester_uid != 0 && requester_uid != match->uid)
    return make_error("job {} belongs to uid {}, not to uid {}", match->id, match->uid,
                      requester_uid);
  // Pinned first, then signalled: a recycled pid can no longer be hit after that.
  auto pidfd = platform::pin_process({match->job_pid, match->job_start});
  if (!pidfd.ok() && pidfd.error().code == ESRCH) return make_error("job {} has just ended", match->id);
  if (!pidfd.ok()) return Error{pidfd.error().code, fmt::format("job {}: {}", match->id, pidfd.error().message)};
  if (platform::pidfd_signal(pidfd->get(), signo) != 0)
    return errno_error("job {}: cannot send signal {} to pid {}", match->id, signo, match->job_pid);
  return true;
}

}  // namespace osmo::run
