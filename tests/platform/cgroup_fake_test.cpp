// SPDX-License-Identifier: GPL-2.0-or-later
// Cgroup quota, usage and process listing on fake v1 and v2 trees (the formats each version
// writes and reads). Nothing here signals or removes anything: fake pids are not ours.
#include <gtest/gtest.h>

#include "fake_tree.hpp"
#include "platform/linux/cgroup.hpp"
#include "platform/linux/sysfs_io.hpp"

namespace osmo::platform {
namespace {

using osmo::testing::FakeTree;

TEST(CgroupFake, V2QuotaUsageAndProcesses) {
  FakeTree t;
  t.write("cg/cgroup.controllers", "cpuset cpu memory\n");
  t.write("cg/tb/n1/cpu.max", "max 100000\n");
  t.write("cg/tb/n1/cpu.stat", "usage_usec 1234\n");
  t.write("cg/tb/n1/cgroup.procs", "10\n11\n");
  t.write("cg/tb/n1/job/cgroup.procs", "12\n10\n");
  auto layout = CgroupLayout::detect(t.path("cg"));
  ASSERT_TRUE(layout.ok()) << layout.error().str();
  CgroupDirs dirs = cgroup_dirs_at(*layout, "/tb/n1");
  EXPECT_EQ(dirs.distinct(), std::vector<std::string>{t.path("cg/tb/n1")});
  Cgroup cg = Cgroup::open(*layout, dirs);
  EXPECT_TRUE(cg.exists());
  EXPECT_EQ(*cg.cpu_quota(), std::nullopt);
  ASSERT_TRUE(cg.set_cpu_quota(0.5).ok());
  EXPECT_EQ(*read_trimmed(t.path("cg/tb/n1/cpu.max")), "50000 100000");
  EXPECT_DOUBLE_EQ(**cg.cpu_quota(), 0.5);
  EXPECT_EQ(*cg.cpu_usage_us(), 1234u);
  EXPECT_EQ(*cg.processes(), (std::vector<pid_t>{10, 11, 12}));
  EXPECT_FALSE(cg.set_cpu_quota(-1.0).ok());
}

TEST(CgroupFake, V1QuotaUsageAndProcessesAcrossHierarchies) {
  FakeTree t;
  for (const char* c : {"cpu", "cpuacct", "memory"}) t.mkdir(std::string("cg/") + c);
  t.write("cg/cpu/tb/n1/cpu.cfs_quota_us", "-1\n");
  t.write("cg/cpu/tb/n1/cpu.cfs_period_us", "100000\n");
  t.write("cg/cpu/tb/n1/cgroup.procs", "20\n");
  t.write("cg/cpuacct/tb/n1/cpuacct.usage", "5000000\n");
  t.write("cg/memory/x/tb/n1/cgroup.procs", "21\n");  // a process only in the memory hierarchy
  auto layout = CgroupLayout::detect(t.path("cg"));
  ASSERT_TRUE(layout.ok()) << layout.error().str();
  ASSERT_EQ(layout->version(), CgroupVersion::kV1);
  EXPECT_FALSE(layout->has_controller("cpuset"));
  CgroupDirs dirs;
  dirs.cpu = t.path("cg/cpu/tb/n1");
  dirs.cpuacct = t.path("cg/cpuacct/tb/n1");
  dirs.memory = t.path("cg/memory/x/tb/n1");
  Cgroup cg = Cgroup::open(*layout, dirs);
  ASSERT_TRUE(cg.set_cpu_quota(1.5).ok());
  EXPECT_EQ(*read_trimmed(t.path("cg/cpu/tb/n1/cpu.cfs_quota_us")), "150000");
  EXPECT_DOUBLE_EQ(**cg.cpu_quota(), 1.5);
  ASSERT_TRUE(cg.set_cpu_quota(std::nullopt).ok());
  EXPECT_EQ(*read_trimmed(t.path("cg/cpu/tb/n1/cpu.cfs_quota_us")), "-1");
  EXPECT_EQ(*cg.cpu_usage_us(), 5000u);
  EXPECT_EQ(*cg.processes(), (std::vector<pid_t>{20, 21}));
}

}  // namespace
}  // namespace osmo::platform
