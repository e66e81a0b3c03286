// SPDX-License-Identifier: GPL-2.0-or-later
// Cgroup hierarchy detection and path mapping (see cgroup_layout.hpp).
#include "platform/linux/cgroup_layout.hpp"

#include <algorithm>

#include "platform/linux/sysfs_io.hpp"

namespace osmo::platform {
namespace {

constexpr const char* kV1Controllers[] = {"cpu", "cpuacct", "cpuset", "memory"};

// v2 has no separate cpuacct: its accounting is part of the always-present cpu.stat.
std::string_view v2_name(std::string_view controller) {
  return controller == "cpuacct" ? std::string_view("cpu") : controller;
}

}  // namespace

Result<CgroupLayout> CgroupLayout::detect(std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (path_exists(root + "/cgroup.controllers")) {
    OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(root + "/cgroup.controllers"));
    std::vector<std::string> ctrls;
    std::string_view rest = trim(text);
    while (!rest.empty()) {
      auto sp = rest.find(' ');
      ctrls.emplace_back(rest.substr(0, sp));
      if (sp == std::string_view::npos) break;
      rest = trim(rest.substr(sp + 1));
    }
    return CgroupLayout(CgroupVersion::kV2, std::move(root), std::move(ctrls));
  }
  for (const char* c : kV1Controllers) {
    if (is_directory(root + "/" + c)) return CgroupLayout(CgroupVersion::kV1, std::move(root), {});
  }
  return make_error(
      "{}: neither a cgroup v2 mount (no cgroup.controllers) nor a v1 tree "
      "(no cpu, cpuacct, cpuset or memory directory)",
      root);
}

bool CgroupLayout::has_controller(std::string_view controller) const {
  if (version_ == CgroupVersion::kV2) {
    auto name = v2_name(controller);
    return std::find(v2_controllers_.begin(), v2_controllers_.end(), name) != v2_controllers_.end();
  }
  return is_directory(mount_dir(controller));
}

std::string CgroupLayout::mount_dir(std::string_view controller) const {
  if (version_ == CgroupVersion::kV2) return root_;
  return root_ + "/" + std::string(controller);
}

std::string CgroupLayout::dir(std::string_view controller, std::string_view path) const {
  std::string d = mount_dir(controller);
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (!path.empty()) d += "/" + std::string(path);
  return d;
}

std::optional<std::string> CgroupLayout::path_of(const std::vector<CgroupMembership>& memberships,
                                                 std::string_view controller) const {
  for (const auto& m : memberships) {
    if (version_ == CgroupVersion::kV2) {
      if (m.hierarchy_id == 0 && m.controllers.empty()) return m.path;
    } else if (std::find(m.controllers.begin(), m.controllers.end(), controller) !=
               m.controllers.end()) {
      return m.path;
    }
  }
  return std::nullopt;
}

Result<std::vector<CgroupMembership>> read_proc_cgroup(const std::string& proc_root,
                                                       const std::string& pid) {
  std::string path = proc_root + "/" + pid + "/cgroup";
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  auto parsed = parse_proc_cgroup(text);
  if (!parsed.ok()) return make_error("{}: {}", path, parsed.error().message);
  return std::move(parsed).value();
}

}  // namespace osmo::platform
