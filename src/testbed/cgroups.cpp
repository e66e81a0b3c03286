// SPDX-License-Identifier: GPL-2.0-or-later
// Placement of the testbed's cgroups (see cgroups.hpp).
#include "testbed/cgroups.hpp"

#include "testbed/layout.hpp"

namespace osmo::testbed {
namespace {

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() ? std::string() : dir + "/" + name;
}

bool ends_with_parent_name(const std::string& d, std::string_view instance) {
  const std::string suffix = "/" + cgroup_parent_name(instance);
  return d.size() > suffix.size() &&
         d.compare(d.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Result<platform::CgroupDirs> testbed_cgroup_parent(const platform::CgroupLayout& layout,
                                                   std::string_view instance) {
  const std::string name = cgroup_parent_name(instance);
  if (layout.version() == platform::CgroupVersion::kV2) return platform::cgroup_dirs_at(layout, "/" + name);
  OSMO_ASSIGN_OR_RETURN(auto memberships, platform::read_proc_cgroup("/proc", "self"));
  platform::CgroupDirs d;
  auto at = [&](const char* ctrl) -> std::string {
    if (!layout.has_controller(ctrl)) return {};
    std::string own = layout.path_of(memberships, ctrl).value_or("/");
    return layout.dir(ctrl, own + "/" + name);
  };
  d.cpu = at("cpu");
  d.cpuacct = at("cpuacct");
  d.cpuset = at("cpuset");
  d.memory = at("memory");
  return d;
}

platform::CgroupDirs child_cgroup(const platform::CgroupDirs& parent, const std::string& name) {
  return platform::CgroupDirs{join(parent.cpu, name), join(parent.cpuacct, name),
                              join(parent.cpuset, name), join(parent.memory, name)};
}

std::vector<platform::CgroupDirs> leftover_cgroup_parents(const platform::CgroupLayout& layout,
                                                          std::string_view instance,
                                                          const platform::CgroupDirs& recorded) {
  std::vector<platform::CgroupDirs> out;
  auto add = [&](const platform::CgroupDirs& d) {
    platform::CgroupDirs safe;
    // Never touch a directory that is not one of ours by name.
    for (auto [src, dst] : {std::pair{&d.cpu, &safe.cpu}, std::pair{&d.cpuacct, &safe.cpuacct},
                            std::pair{&d.cpuset, &safe.cpuset}, std::pair{&d.memory, &safe.memory}})
      if (ends_with_parent_name(*src, instance)) *dst = *src;
    if (!safe.empty()) out.push_back(safe);
  };
  add(recorded);
  if (auto ours = testbed_cgroup_parent(layout, instance); ours.ok()) add(*ours);
  add(platform::cgroup_dirs_at(layout, "/" + cgroup_parent_name(instance)));
  return out;
}

}  // namespace osmo::testbed
