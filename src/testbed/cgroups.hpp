// SPDX-License-Identifier: GPL-2.0-or-later
// Where the testbed's cgroups go. Each node gets <parent>/osmo-testbed/nK in every controller
// we use. On cgroup v1 <parent> is our own cgroup in that controller (on the CI machine: the root
// for cpu, cpuacct and cpuset, and a nested memory cgroup that the machine's supervisor put us
// in, which we should stay inside). On v2 it is the root: v2 forbids controllers in a cgroup
// that holds processes, which our own cgroup usually does.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "platform/linux/cgroup.hpp"
#include "platform/linux/cgroup_layout.hpp"

namespace osmo::testbed {

// The osmo-testbed[-INSTANCE] directories for a testbed made by this process.
Result<platform::CgroupDirs> testbed_cgroup_parent(const platform::CgroupLayout& layout,
                                                   std::string_view instance);
// parent/name in each controller.
platform::CgroupDirs child_cgroup(const platform::CgroupDirs& parent, const std::string& name);
// Every osmo-testbed directory set a testbed could have used: the recorded one, ours, and the
// ones at the hierarchy roots. Only directories named osmo-testbed are ever returned.
std::vector<platform::CgroupDirs> leftover_cgroup_parents(const platform::CgroupLayout& layout, std::string_view instance,
                                                          const platform::CgroupDirs& recorded);

}  // namespace osmo::testbed
