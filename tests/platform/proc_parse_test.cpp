// SPDX-License-Identifier: GPL-2.0-or-later
// Parsers of procfs/cgroupfs formats, on literal text taken from real machines.
#include "platform/linux/proc_parse.hpp"

#include <gtest/gtest.h>

#include "fake_tree.hpp"

namespace osmo::platform {
namespace {

TEST(ProcParse, CpuList) {
  auto r = parse_cpu_list("0-3,8,10-11\n");
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(*r, (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_TRUE(parse_cpu_list("")->empty());
  EXPECT_EQ(*parse_cpu_list("5"), std::vector<int>{5});
  EXPECT_FALSE(parse_cpu_list("3-1").ok());
  EXPECT_FALSE(parse_cpu_list("a-b").ok());
  EXPECT_FALSE(parse_cpu_list("1,,2").ok());
}

TEST(ProcParse, KeyedValues) {
  const char* meminfo =
      "MemTotal:       24570020 kB\nMemFree:        20000000 kB\n"
      "MemAvailable:   22000000 kB\n";
  EXPECT_EQ(find_keyed_u64(meminfo, "MemTotal"), 24570020u);
  EXPECT_EQ(find_keyed_u64(meminfo, "MemAvailable"), 22000000u);
  EXPECT_EQ(find_keyed_u64(meminfo, "Mem"), std::nullopt);  // a prefix is not a key
  const char* cpu_stat = "usage_usec 5123\nuser_usec 4000\nsystem_usec 1123\n";
  EXPECT_EQ(find_keyed_u64(cpu_stat, "usage_usec"), 5123u);
  EXPECT_EQ(find_keyed_u64(cpu_stat, "user"), std::nullopt);
  EXPECT_EQ(find_keyed_text("Name:\tosmo\nCpus_allowed_list:\t0-1\n", "Cpus_allowed_list"),
            std::string("0-1"));
}

TEST(ProcParse, ProcStat) {
  const char* text =
      "cpu  100 20 30 400 50 5 7 9 0 0\ncpu0 50 10 15 200 25 2 3 4 0 0\nintr 1 2 3\n"
      "ctxt 99\nbtime 1700000000\nprocesses 1234\nprocs_running 3\nprocs_blocked 0\n";
  auto r = parse_proc_stat(text);
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->procs_running, 3u);
  EXPECT_EQ(r->busy_ticks, 100u + 20 + 30 + 5 + 7);            // idle, iowait and steal excluded
  EXPECT_FALSE(parse_proc_stat("cpu  1 2 3 4 5 6 7\n").ok());  // no procs_running
}

TEST(ProcParse, ProcCgroupV1AndV2) {
  auto r = parse_proc_cgroup(
      "12:cpu,cpuacct:/osmo-testbed/n1\n4:memory:/process_api/abc\n1:name=systemd:/\n0::/\n");
  ASSERT_TRUE(r.ok()) << r.error().str();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].hierarchy_id, 12);
  EXPECT_EQ((*r)[0].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ((*r)[0].path, "/osmo-testbed/n1");
  EXPECT_EQ((*r)[2].controllers, std::vector<std::string>{"name=systemd"});
  EXPECT_TRUE((*r)[3].controllers.empty());
  EXPECT_EQ((*r)[3].path, "/");
  auto colon = parse_proc_cgroup("0::/a:b\n");  // ':' inside the path
  ASSERT_TRUE(colon.ok());
  EXPECT_EQ((*colon)[0].path, "/a:b");
  EXPECT_FALSE(parse_proc_cgroup("garbage\n").ok());
}

TEST(ProcParse, PidStatWithAwkwardName) {
  auto r = parse_pid_stat(osmo::testing::fake_pid_stat(42, 'R', 777));
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->state, 'R');
  EXPECT_EQ(r->start_ticks, 777u);
  EXPECT_FALSE(parse_pid_stat("42 (x) R 1").ok());
}

TEST(ProcParse, CpuQuotas) {
  EXPECT_EQ(*parse_cpu_max("max 100000\n"), std::nullopt);
  EXPECT_DOUBLE_EQ(**parse_cpu_max("50000 100000\n"), 0.5);
  EXPECT_FALSE(parse_cpu_max("50000").ok());
  EXPECT_FALSE(parse_cpu_max("x 100000").ok());
  EXPECT_EQ(*parse_cfs_quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_DOUBLE_EQ(**parse_cfs_quota("150000", "100000"), 1.5);
  EXPECT_FALSE(parse_cfs_quota("150000", "0").ok());
}

TEST(ProcParse, MemoryLimits) {
  EXPECT_EQ(*parse_memory_limit("max\n"), std::nullopt);
  EXPECT_EQ(*parse_memory_limit("9223372036854771712\n"), std::nullopt);  // v1 "unlimited"
  EXPECT_EQ(**parse_memory_limit("1073741824"), 1073741824u);
  EXPECT_FALSE(parse_memory_limit("lots").ok());
}

}  // namespace
}  // namespace osmo::platform
