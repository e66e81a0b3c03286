// SPDX-License-Identifier: GPL-2.0-or-later
// Management of one cgroup of our own (see cgroup.hpp).
#include "platform/linux/cgroup.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <set>
#include <thread>

#include "platform/linux/proc_parse.hpp"
#include "platform/linux/sysfs_io.hpp"

namespace osmo::platform {
namespace {

constexpr int kMaxDepth = 32;
constexpr std::uint64_t kMinQuotaUs = 1000;  // the kernel rejects quotas under 1 ms

std::string parent_of(const std::string& d) {
  auto slash = d.rfind('/');
  return slash == std::string::npos || slash == 0 ? std::string("/") : d.substr(0, slash);
}

// Collects cgroup.procs of `dir` and its children into `out`.
Status collect_procs(const std::string& dir, std::set<pid_t>* out, int depth) {
  auto text = read_text_file(dir + "/cgroup.procs");
  if (!text.ok()) {
    if (text.error().code == ENOENT) return ok_status();  // gone (or never created): empty
    return text.take_error();
  }
  std::string_view rest = *text;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::uint64_t pid = 0;
    if (parse_u64(trim(rest.substr(0, nl)), &pid) && pid > 0) out->insert(static_cast<pid_t>(pid));
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  if (depth >= kMaxDepth) return ok_status();
  auto children = list_directory(dir, /*only_dirs=*/true);
  if (!children.ok()) return ok_status();
  for (const auto& c : *children) OSMO_TRY(collect_procs(dir + "/" + c, out, depth + 1));
  return ok_status();
}

// Whether the space-separated list `text` (cgroup.controllers, cgroup.subtree_control) holds
// `word` exactly: "cpuset" must not count as "cpu".
bool has_word(std::string_view text, std::string_view word) {
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    std::size_t b = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n') ++i;
    if (text.substr(b, i - b) == word) return true;
  }
  return false;
}

// rmdir of `dir` after its child cgroups, deepest first.
Status remove_tree(const std::string& dir, int depth) {
  if (!is_directory(dir)) return ok_status();
  if (depth < kMaxDepth) {
    if (auto children = list_directory(dir, /*only_dirs=*/true); children.ok())
      for (const auto& c : *children) OSMO_TRY(remove_tree(dir + "/" + c, depth + 1));
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return errno_error("rmdir cgroup {}", dir);
  return ok_status();
}

// mkdir -p for a cgroup directory, with per-level initialisation of new directories.
template <typename Init>
Status make_cgroup_dirs(const std::string& dir, const std::string& mount, Init init) {
  if (is_directory(dir)) return ok_status();
  if (dir.size() <= mount.size()) return make_error("cgroup hierarchy {} is not mounted", mount);
  OSMO_TRY(make_cgroup_dirs(parent_of(dir), mount, init));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return errno_error("mkdir cgroup {}", dir);
  return init(dir);
}

}  // namespace

std::vector<std::string> CgroupDirs::distinct() const {
  std::vector<std::string> out;
  for (const std::string* d : {&cpu, &cpuacct, &cpuset, &memory})
    if (!d->empty() && std::find(out.begin(), out.end(), *d) == out.end()) out.push_back(*d);
  return out;
}

CgroupDirs cgroup_dirs_at(const CgroupLayout& layout, const std::string& path) {
  CgroupDirs d;
  auto at = [&](const char* c) { return layout.has_controller(c) ? layout.dir(c, path) : ""; };
  d.cpu = at("cpu");
  d.cpuacct = at("cpuacct");
  d.cpuset = at("cpuset");
  d.memory = at("memory");
  if (layout.version() == CgroupVersion::kV2) {
    // A v2 cgroup exists (and accounts CPU in cpu.stat) whatever controllers are enabled.
    d.cpu = d.cpuacct = layout.dir("cpu", path);
  }
  return d;
}

Result<Cgroup> Cgroup::create(const CgroupLayout& layout, CgroupDirs dirs,
                              std::optional<double> cpu_quota) {
  const bool v2 = layout.version() == CgroupVersion::kV2;
  if (dirs.empty()) return make_error("no cgroup controller available under {}", layout.root());
  if (v2) {
    OSMO_TRY(make_cgroup_dirs(dirs.cpu, layout.root(), [&](const std::string& d) -> Status {
      // Enable what the parent offers; a controller the parent lacks is simply not used.
      std::string parent = parent_of(d);
      auto offered = read_text_file(parent + "/cgroup.controllers");
      if (!offered.ok()) return offered.take_error();
      for (const char* c : {"cpu", "cpuset", "memory"}) {
        if (!has_word(*offered, c)) continue;
        auto enabled = read_text_file(parent + "/cgroup.subtree_control");
        if (enabled.ok() && has_word(*enabled, c)) continue;
        Status s = write_text_file(parent + "/cgroup.subtree_control", std::string("+") + c);
        if (!s.ok() && std::string_view(c) == "cpu" && cpu_quota) return s;
      }
      return ok_status();
    }));
  } else {
    auto plain = [](const std::string&) { return ok_status(); };
    for (const char* c : {"cpu", "cpuacct", "memory"}) {
      const std::string& d = std::string_view(c) == "cpu"       ? dirs.cpu
                             : std::string_view(c) == "cpuacct" ? dirs.cpuacct
                                                                : dirs.memory;
      if (!d.empty()) OSMO_TRY(make_cgroup_dirs(d, layout.mount_dir(c), plain));
    }
    if (!dirs.cpuset.empty()) {
      auto inherit_cpuset = [](const std::string& d) -> Status {
        for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
          OSMO_ASSIGN_OR_RETURN(std::string v, read_text_file(parent_of(d) + "/" + f));
          OSMO_TRY(write_text_file(d + "/" + f, trim(v)));
        }
        return ok_status();
      };
      OSMO_TRY(make_cgroup_dirs(dirs.cpuset, layout.mount_dir("cpuset"), inherit_cpuset));
    }
  }
  Cgroup cg(layout.version(), std::move(dirs));
  if (cpu_quota) OSMO_TRY(cg.set_cpu_quota(cpu_quota));
  return cg;
}

Cgroup Cgroup::open(const CgroupLayout& layout, CgroupDirs dirs) {
  return Cgroup(layout.version(), std::move(dirs));
}

bool Cgroup::exists() const {
  for (const auto& d : dirs_.distinct())
    if (is_directory(d)) return true;
  return false;
}

Status Cgroup::set_cpu_quota(std::optional<double> cpus) const {
  if (dirs_.cpu.empty()) return make_error("cannot set a CPU quota: no cpu controller");
  std::int64_t quota_us = -1;
  if (cpus) {
    if (!(*cpus > 0) || !std::isfinite(*cpus)) return make_error("bad CPU quota {}", *cpus);
    quota_us = std::max<std::int64_t>(static_cast<std::int64_t>(std::llround(*cpus * kCfsPeriodUs)),
                                      kMinQuotaUs);
  }
  if (version_ == CgroupVersion::kV2) {
    std::string v = quota_us < 0 ? fmt::format("max {}", kCfsPeriodUs)
                                 : fmt::format("{} {}", quota_us, kCfsPeriodUs);
    return write_text_file(dirs_.cpu + "/cpu.max", v);
  }
  // Order matters: the kernel checks quota against period and the parents' quotas.
  OSMO_TRY(write_text_file(dirs_.cpu + "/cpu.cfs_period_us", std::to_string(kCfsPeriodUs)));
  return write_text_file(dirs_.cpu + "/cpu.cfs_quota_us", std::to_string(quota_us));
}

Result<std::optional<double>> Cgroup::cpu_quota() const {
  if (dirs_.cpu.empty()) return std::optional<double>{};
  if (version_ == CgroupVersion::kV2) {
    auto text = read_text_file(dirs_.cpu + "/cpu.max");
    if (!text.ok()) return std::optional<double>{};  // cpu controller not enabled here
    return parse_cpu_max(*text);
  }
  OSMO_ASSIGN_OR_RETURN(std::string q, read_text_file(dirs_.cpu + "/cpu.cfs_quota_us"));
  OSMO_ASSIGN_OR_RETURN(std::string p, read_text_file(dirs_.cpu + "/cpu.cfs_period_us"));
  return parse_cfs_quota(q, p);
}

Result<std::uint64_t> Cgroup::cpu_usage_us() const {
  if (version_ == CgroupVersion::kV2) {
    std::string path = dirs_.cpu + "/cpu.stat";
    OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
    auto usec = find_keyed_u64(text, "usage_usec");
    if (!usec) return make_error("{}: no usage_usec", path);
    return *usec;
  }
  if (dirs_.cpuacct.empty()) return make_error("no cpuacct controller: CPU usage unknown");
  OSMO_ASSIGN_OR_RETURN(std::uint64_t ns, read_u64_file(dirs_.cpuacct + "/cpuacct.usage"));
  return ns / 1000;
}

Status Cgroup::add_process(pid_t pid) const {
  for (const auto& d : dirs_.distinct()) {
    Status s = write_text_file(d + "/cgroup.procs", std::to_string(pid));
    if (!s.ok()) return make_error("move pid {} into cgroup {}: {}", pid, d, s.error().str());
  }
  return ok_status();
}

Result<std::vector<pid_t>> Cgroup::processes() const {
  std::set<pid_t> pids;
  for (const auto& d : dirs_.distinct()) OSMO_TRY(collect_procs(d, &pids, 0));
  return std::vector<pid_t>(pids.begin(), pids.end());
}

Status Cgroup::signal_all(int sig) const {
  OSMO_ASSIGN_OR_RETURN(auto pids, processes());
  for (pid_t p : pids) {
    if (::kill(p, sig) != 0 && errno != ESRCH) return errno_error("kill({}, {})", p, sig);
  }
  return ok_status();
}

Status Cgroup::remove(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    OSMO_ASSIGN_OR_RETURN(auto pids, processes());
    if (pids.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error("cgroup {} still holds {} process(es) (first: pid {}) after SIGKILL",
                        dirs_.distinct().front(), pids.size(), pids.front());
    OSMO_TRY(signal_all(SIGKILL));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const auto& d : dirs_.distinct()) {
    // An exited task may linger in the cgroup for a moment while the kernel releases it, so
    // rmdir can see EBUSY briefly.
    for (;;) {
      Status s = remove_tree(d, 0);
      if (s.ok()) break;
      if (s.error().code != EBUSY || std::chrono::steady_clock::now() >= deadline) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return ok_status();
}

}  // namespace osmo::platform
