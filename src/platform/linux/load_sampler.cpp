// SPDX-License-Identifier: GPL-2.0-or-later
// Load/capacity sampling for the machine or our own cgroup (see load_sampler.hpp).
#include "platform/linux/load_sampler.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <set>

#include "platform/linux/proc_parse.hpp"
#include "platform/linux/sysfs_io.hpp"

namespace osmo::platform {
namespace {

constexpr int kMaxCgroupDepth = 32;  // bounds the recursion over child cgroups
constexpr std::uint64_t kBytesPerMb = 1024 * 1024;

std::string parent_dir(const std::string& d) {
  auto slash = d.rfind('/');
  return slash == std::string::npos || slash == 0 ? std::string("/") : d.substr(0, slash);
}

// Calls f(dir) for `dir` and each ancestor up to and including `mount`.
template <typename F>
Status for_each_ancestor(std::string dir, const std::string& mount, F f) {
  for (int i = 0; i <= kMaxCgroupDepth; ++i) {
    OSMO_TRY(f(dir));
    if (dir == mount || dir.size() <= mount.size()) return ok_status();
    dir = parent_dir(dir);
  }
  return ok_status();
}

// The TID of the calling thread as PROC sees it (PROC/thread-self -> "PID/task/TID"); 0 when the
// link is missing, as in fake trees.
std::uint64_t own_tid(const std::string& proc_root) {
  char buf[64];
  ssize_t n = ::readlink((proc_root + "/thread-self").c_str(), buf, sizeof buf - 1);
  if (n <= 0) return 0;
  std::string_view link(buf, static_cast<std::size_t>(n));
  auto slash = link.rfind('/');
  std::uint64_t tid = 0;
  if (slash == std::string_view::npos || !parse_u64(link.substr(slash + 1), &tid)) return 0;
  return tid;
}

}  // namespace

Result<LoadSampler> LoadSampler::create(LoadScope scope) {
  return create(scope, SamplerOptions{});
}

Result<LoadSampler> LoadSampler::create(LoadScope scope, const SamplerOptions& options) {
  LoadSampler s;
  s.scope_ = scope;
  s.opt_ = options;
  if (scope == LoadScope::kCgroup) {
    OSMO_ASSIGN_OR_RETURN(CgroupLayout layout, CgroupLayout::detect(options.cgroup_root));
    std::vector<CgroupMembership> memberships;
    if (!options.cgroup_path) {
      OSMO_ASSIGN_OR_RETURN(memberships, read_proc_cgroup(options.proc_root, options.cgroup_of));
    }
    auto path_for = [&](const char* ctrl) -> std::string {
      if (!layout.has_controller(ctrl)) return {};
      if (options.cgroup_path) return *options.cgroup_path;
      return layout.path_of(memberships, ctrl).value_or("");
    };
    s.cpu_path_ = path_for("cpu");
    s.cpuacct_path_ = path_for("cpuacct");
    s.cpuset_path_ = path_for("cpuset");
    s.memory_path_ = path_for("memory");
    if (layout.version() == CgroupVersion::kV2 && s.cpu_path_.empty()) {
      // The cpu controller may be absent from a v2 root, but the cgroup itself (and its
      // cgroup.threads and cpu.stat) still exists.
      s.cpu_path_ = options.cgroup_path ? *options.cgroup_path
                                        : layout.path_of(memberships, "cpu").value_or("");
      s.cpuacct_path_ = s.cpu_path_;
    }
    if (s.cpu_path_.empty() && s.cpuacct_path_.empty())
      return make_error("cgroup {} at {}: neither the cpu nor the cpuacct controller is available",
                        options.cgroup_path.value_or(options.cgroup_of), layout.root());
    std::string task_dir = layout.dir(s.cpu_path_.empty() ? "cpuacct" : "cpu",
                                      s.cpu_path_.empty() ? s.cpuacct_path_ : s.cpu_path_);
    if (!is_directory(task_dir)) return make_error("cgroup directory {} does not exist", task_dir);
    s.layout_ = std::move(layout);
    OSMO_ASSIGN_OR_RETURN(s.quota_at_create_, s.read_quota());
  }

  // Speed is relative to the cluster's reference CPU (1.0), never a clock rate: the load a node
  // reports must mean "runnable tasks per usable CPU" whatever the hardware (1.0 = every CPU
  // busy), and every threshold of the policy is calibrated on that scale. When speed was taken
  // from the CPU's MHz (2.6 here), two busy loops under a 0.5 CPU quota read as load 1.5 instead
  // of 4.0. Nodes that really differ in speed are told so by their configuration (`speed`).
  if (options.speed && *options.speed > 0) s.speed_ = *options.speed;
  return s;
}

std::optional<double> LoadSampler::cpu_quota() const {
  if (scope_ != LoadScope::kCgroup) return std::nullopt;
  auto q = read_quota();
  return q.ok() ? *q : quota_at_create_;
}

Result<std::optional<double>> LoadSampler::read_quota() const {
  std::optional<double> best;
  if (scope_ != LoadScope::kCgroup || cpu_path_.empty()) return best;
  const bool v2 = layout_->version() == CgroupVersion::kV2;
  OSMO_TRY(for_each_ancestor(
      layout_->dir("cpu", cpu_path_), layout_->mount_dir("cpu"),
      [&](const std::string& d) -> Status {
        std::optional<double> q;
        if (v2) {
          auto text = read_text_file(d + "/cpu.max");
          if (!text.ok()) return ok_status();  // no cpu controller at this level: no limit here
          auto parsed = parse_cpu_max(*text);
          if (!parsed.ok()) return make_error("{}/cpu.max: {}", d, parsed.error().message);
          q = *parsed;
        } else {
          auto quota = read_text_file(d + "/cpu.cfs_quota_us");
          if (!quota.ok()) return ok_status();
          OSMO_ASSIGN_OR_RETURN(std::string period, read_text_file(d + "/cpu.cfs_period_us"));
          auto parsed = parse_cfs_quota(*quota, period);
          if (!parsed.ok()) return make_error("{}: {}", d, parsed.error().message);
          q = *parsed;
        }
        if (q && (!best || *q < *best)) best = q;
        return ok_status();
      }));
  return best;
}

Result<LoadSample> LoadSampler::sample() {
  LoadSample s;
  s.speed = speed_;
  OSMO_ASSIGN_OR_RETURN(s.cpus, effective_cpus());
  OSMO_TRY(fill_memory(&s));
  if (scope_ == LoadScope::kMachine) {
    std::string path = opt_.proc_root + "/stat";
    OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
    auto st = parse_proc_stat(text);
    if (!st.ok()) return make_error("{}: {}", path, st.error().message);
    OSMO_ASSIGN_OR_RETURN(s.runnable, count_runnable_machine(st->procs_running));
    long hz = ::sysconf(_SC_CLK_TCK);
    if (hz <= 0) hz = 100;
    s.cpu_usage_us = st->busy_ticks * (1'000'000 / static_cast<std::uint64_t>(hz));
  } else {
    OSMO_ASSIGN_OR_RETURN(s.runnable, count_runnable_cgroup());
    OSMO_ASSIGN_OR_RETURN(s.cpu_usage_us, cgroup_cpu_usage_us());
  }
  return s;
}

Result<double> LoadSampler::count_runnable_machine(std::uint64_t procs_running) const {
  // The sampling thread is running while it reads /proc/stat, so the kernel counted it.
  return procs_running > 0 ? static_cast<double>(procs_running - 1) : 0.0;
}

Status LoadSampler::collect_tids(const std::string& dir, std::vector<std::uint64_t>* tids,
                                 int depth) const {
  const char* file = layout_->version() == CgroupVersion::kV2 ? "cgroup.threads" : "tasks";
  auto text = read_text_file(dir + "/" + file);
  if (!text.ok()) {
    // A child cgroup removed while we walk is not an error; the scope's own directory is.
    if (depth > 0 && text.error().code == ENOENT) return ok_status();
    return text.take_error();
  }
  std::string_view rest = *text;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::uint64_t tid = 0;
    if (parse_u64(trim(rest.substr(0, nl)), &tid)) tids->push_back(tid);
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  if (depth >= kMaxCgroupDepth) return ok_status();
  auto children = list_directory(dir, /*only_dirs=*/true);
  if (!children.ok()) return depth > 0 ? ok_status() : children.take_error();
  for (const auto& c : *children) OSMO_TRY(collect_tids(dir + "/" + c, tids, depth + 1));
  return ok_status();
}

Result<double> LoadSampler::count_runnable_cgroup() const {
  std::string dir =
      cpu_path_.empty() ? layout_->dir("cpuacct", cpuacct_path_) : layout_->dir("cpu", cpu_path_);
  std::vector<std::uint64_t> tids;
  OSMO_TRY(collect_tids(dir, &tids, 0));
  const std::uint64_t self = own_tid(opt_.proc_root);
  double runnable = 0;
  for (auto tid : tids) {
    if (tid == self) continue;  // we are running because we are sampling
    auto text = read_text_file(fmt::format("{}/{}/stat", opt_.proc_root, tid));
    if (!text.ok()) continue;  // the task exited since the cgroup listed it
    auto st = parse_pid_stat(*text);
    if (st.ok() && st->state == 'R') runnable += 1;
  }
  return runnable;
}

Result<double> LoadSampler::effective_cpus() const {
  std::optional<std::vector<int>> allowed;
  if (scope_ == LoadScope::kCgroup && !cpuset_path_.empty()) {
    std::string d = layout_->dir("cpuset", cpuset_path_);
    const char* names[] = {"cpuset.effective_cpus", "cpuset.cpus.effective", "cpuset.cpus"};
    for (const char* n : names) {
      auto text = read_text_file(d + "/" + n);
      if (!text.ok() || trim(*text).empty()) continue;
      auto cpus = parse_cpu_list(*text);
      if (!cpus.ok()) return make_error("{}/{}: {}", d, n, cpus.error().message);
      allowed = std::move(cpus).value();
      break;
    }
  }
  if (!allowed) {
    std::string path = opt_.proc_root + "/self/status";
    OSMO_ASSIGN_OR_RETURN(std::string status, read_text_file(path));
    auto list = find_keyed_text(status, "Cpus_allowed_list");
    if (!list) return make_error("{}: no Cpus_allowed_list", path);
    auto cpus = parse_cpu_list(*list);
    if (!cpus.ok()) return make_error("{}: {}", path, cpus.error().message);
    allowed = std::move(cpus).value();
  }
  std::set<int> usable(allowed->begin(), allowed->end());
  if (auto online = read_text_file(opt_.sys_root + "/devices/system/cpu/online"); online.ok()) {
    if (auto on = parse_cpu_list(*online); on.ok()) {
      std::set<int> on_set(on->begin(), on->end());
      std::erase_if(usable, [&](int c) { return !on_set.contains(c); });
    }
  }
  if (usable.empty()) return make_error("no online CPU in the allowed set");
  double cpus = static_cast<double>(usable.size());
  OSMO_ASSIGN_OR_RETURN(std::optional<double> quota, read_quota());
  if (quota) cpus = std::min(cpus, *quota);
  return cpus;
}

Status LoadSampler::fill_memory(LoadSample* s) const {
  std::string path = opt_.proc_root + "/meminfo";
  OSMO_ASSIGN_OR_RETURN(std::string meminfo, read_text_file(path));
  auto total_kb = find_keyed_u64(meminfo, "MemTotal");
  auto avail_kb = find_keyed_u64(meminfo, "MemAvailable");
  if (!total_kb) return make_error("{}: no MemTotal", path);
  if (!avail_kb) avail_kb = find_keyed_u64(meminfo, "MemFree");  // kernels before 3.14
  if (!avail_kb) return make_error("{}: neither MemAvailable nor MemFree", path);
  std::uint64_t total = *total_kb * 1024, avail = *avail_kb * 1024;
  s->mem_total_mb = total / kBytesPerMb;
  s->mem_free_mb = avail / kBytesPerMb;
  if (scope_ != LoadScope::kCgroup || memory_path_.empty()) return ok_status();

  const bool v2 = layout_->version() == CgroupVersion::kV2;
  const std::string dir = layout_->dir("memory", memory_path_);
  // The tightest limit along the ancestry applies to us.
  std::optional<std::uint64_t> limit;
  OSMO_TRY(
      for_each_ancestor(dir, layout_->mount_dir("memory"), [&](const std::string& d) -> Status {
        auto text = read_text_file(d + (v2 ? "/memory.max" : "/memory.limit_in_bytes"));
        if (!text.ok()) return ok_status();
        auto l = parse_memory_limit(*text);
        if (!l.ok()) return make_error("{}: {}", d, l.error().message);
        if (*l && (!limit || **l < *limit)) limit = *l;
        return ok_status();
      }));
  if (!limit || *limit >= total) return ok_status();  // no limit below the machine's memory

  OSMO_ASSIGN_OR_RETURN(std::uint64_t usage,
                        read_u64_file(dir + (v2 ? "/memory.current" : "/memory.usage_in_bytes")));
  // Page cache that can be dropped is not in use: the working set is usage - inactive file
  // pages, as container runtimes compute it.
  std::uint64_t inactive = 0;
  if (auto stat = read_text_file(dir + "/memory.stat"); stat.ok())
    inactive = find_keyed_u64(*stat, v2 ? "inactive_file" : "total_inactive_file").value_or(0);
  std::uint64_t working = usage > inactive ? usage - inactive : 0;
  std::uint64_t free = working < *limit ? *limit - working : 0;
  s->mem_total_mb = *limit / kBytesPerMb;
  s->mem_free_mb = std::min(free, avail) / kBytesPerMb;
  return ok_status();
}

Result<std::uint64_t> LoadSampler::cgroup_cpu_usage_us() const {
  if (layout_->version() == CgroupVersion::kV2) {
    std::string path = layout_->dir("cpu", cpu_path_) + "/cpu.stat";
    OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
    auto usec = find_keyed_u64(text, "usage_usec");
    if (!usec) return make_error("{}: no usage_usec", path);
    return *usec;
  }
  if (cpuacct_path_.empty())
    return make_error("cgroup v1 at {}: no cpuacct controller for CPU usage", layout_->root());
  OSMO_ASSIGN_OR_RETURN(std::uint64_t ns,
                        read_u64_file(layout_->dir("cpuacct", cpuacct_path_) + "/cpuacct.usage"));
  return ns / 1000;
}

std::string LoadSampler::describe() const {
  if (scope_ == LoadScope::kMachine) return fmt::format("machine (speed {:.2f})", speed_);
  auto quota = cpu_quota();
  std::string q = quota ? fmt::format("cpu quota {:g}", *quota) : std::string("no cpu quota");
  return fmt::format("cgroup v{} {} ({})", layout_->version_number(),
                     cpu_path_.empty() ? cpuacct_path_ : cpu_path_, q);
}

LoadScope resolve_auto_scope() {
  return resolve_auto_scope(SamplerOptions{});
}

LoadScope resolve_auto_scope(const SamplerOptions& options) {
  auto s = LoadSampler::create(LoadScope::kCgroup, options);
  if (s.ok() && s->cpu_quota()) return LoadScope::kCgroup;
  return LoadScope::kMachine;
}

}  // namespace osmo::platform
