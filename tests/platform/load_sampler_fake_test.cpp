// SPDX-License-Identifier: GPL-2.0-or-later
// LoadSampler on fake procfs/sysfs/cgroupfs trees: cgroup v1 (hybrid layout, as on our CI
// machine), pure v2 (as on most user machines), and the machine scope.
#include <gtest/gtest.h>
#include <unistd.h>

#include "fake_tree.hpp"
#include "platform/linux/load_sampler.hpp"

namespace osmo::platform {
namespace {

using osmo::testing::fake_pid_stat;
using osmo::testing::FakeTree;

constexpr const char* kMeminfo = "MemTotal:        8388608 kB\nMemAvailable:    4194304 kB\n";

SamplerOptions options_for(const FakeTree& t) {
  SamplerOptions o;
  o.proc_root = t.path("proc");
  o.sys_root = t.path("sys");
  o.cgroup_root = t.path("cg");
  return o;
}

void write_common(const FakeTree& t) {
  t.write("proc/self/status", "Name:\tosmo\nCpus_allowed_list:\t0-3\n");
  t.write("proc/meminfo", kMeminfo);
  t.write("proc/stat", "cpu  100 20 30 400 50 5 5 0 0 0\nprocs_running 3\n");
  t.write("sys/devices/system/cpu/online", "0-3\n");
  t.write("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "2500000\n");
  t.write("proc/100/stat", fake_pid_stat(100, 'R'));
  t.write("proc/101/stat", fake_pid_stat(101, 'S'));
  t.write("proc/102/stat", fake_pid_stat(102, 'R'));
  t.write("proc/104/stat", fake_pid_stat(104, 'D'));
}

// Hybrid v1: cpu and cpuacct at /tb/n1, cpuset at the root, memory nested elsewhere.
void write_v1(const FakeTree& t) {
  write_common(t);
  t.write(
      "proc/self/cgroup",
      "9:name=systemd:/\n4:memory:/mem/grp\n3:cpuset:/\n2:cpuacct:/tb/n1\n1:cpu:/tb/n1\n0::/\n");
  t.write("cg/cpu/cpu.cfs_quota_us", "-1\n");
  t.write("cg/cpu/cpu.cfs_period_us", "100000\n");
  t.write("cg/cpu/tb/cpu.cfs_quota_us", "-1\n");
  t.write("cg/cpu/tb/cpu.cfs_period_us", "100000\n");
  t.write("cg/cpu/tb/n1/cpu.cfs_quota_us", "50000\n");
  t.write("cg/cpu/tb/n1/cpu.cfs_period_us", "100000\n");
  t.write("cg/cpu/tb/n1/tasks", "100\n101\n");
  // A child cgroup: its tasks count too; 103 has exited since the cgroup listed it.
  t.write("cg/cpu/tb/n1/child/tasks", "102\n103\n104\n");
  t.write("cg/cpuacct/tb/n1/cpuacct.usage", "1234567000\n");
  t.write("cg/cpuset/cpuset.effective_cpus", "0-1\n");
  t.write("cg/memory/memory.limit_in_bytes", "9223372036854771712\n");
  t.write("cg/memory/mem/grp/memory.limit_in_bytes", "1073741824\n");
  t.write("cg/memory/mem/grp/memory.usage_in_bytes", "536870912\n");
  t.write("cg/memory/mem/grp/memory.stat",
          "cache 1\ninactive_file 5\ntotal_inactive_file 134217728\n");
  t.mkdir("cg/unified");  // the empty v2 hierarchy of a hybrid machine is ignored
}

void write_v2(const FakeTree& t) {
  write_common(t);
  t.write("proc/self/cgroup", "0::/tb/n2\n");
  t.write("cg/cgroup.controllers", "cpuset cpu io memory pids\n");
  t.write("cg/tb/cpu.max", "max 100000\n");
  t.write("cg/tb/n2/cpu.max", "150000 100000\n");
  t.write("cg/tb/n2/cgroup.threads", "100\n101\n");
  t.write("cg/tb/n2/sub/cgroup.threads", "102\n");
  t.write("cg/tb/n2/cpu.stat", "usage_usec 42\nuser_usec 40\nsystem_usec 2\n");
  t.write("cg/tb/n2/cpuset.cpus.effective", "0-3\n");
  t.write("cg/tb/n2/memory.max", "max\n");
  t.write("cg/tb/n2/memory.current", "1000\n");
}

TEST(LoadSamplerFake, CgroupV1Hybrid) {
  FakeTree t;
  write_v1(t);
  auto s = LoadSampler::create(LoadScope::kCgroup, options_for(t));
  ASSERT_TRUE(s.ok()) << s.error().str();
  auto r = s->sample();
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->runnable, 2);          // 100 and 102 (child cgroup); S, D and exited ones not
  EXPECT_DOUBLE_EQ(r->cpus, 0.5);     // cpuset 0-1 (2 CPUs), quota 0.5 wins
  EXPECT_DOUBLE_EQ(r->speed, 1.0);    // not the 2.5 GHz max frequency: speed is configuration
  EXPECT_EQ(r->mem_total_mb, 1024u);  // the cgroup limit
  EXPECT_EQ(r->mem_free_mb, 640u);    // 1024 - (512 - 128 inactive file)
  EXPECT_EQ(r->cpu_usage_us, 1234567u);
  EXPECT_EQ(s->describe(), "cgroup v1 /tb/n1 (cpu quota 0.5)");
  EXPECT_EQ(resolve_auto_scope(options_for(t)), LoadScope::kCgroup);
}

TEST(LoadSamplerFake, CgroupV1AncestorQuotaAndSelfExcluded) {
  FakeTree t;
  write_v1(t);
  t.write("cg/cpu/tb/cpu.cfs_quota_us", "25000\n");  // the parent is tighter
  t.symlink("100/task/100", "proc/thread-self");     // we are task 100, the sampler
  auto s = LoadSampler::create(LoadScope::kCgroup, options_for(t));
  ASSERT_TRUE(s.ok()) << s.error().str();
  auto r = s->sample();
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_DOUBLE_EQ(r->cpus, 0.25);
  EXPECT_EQ(r->runnable, 1);  // only 102: the sampler itself does not count
  ASSERT_TRUE(s->cpu_quota().has_value());
  EXPECT_DOUBLE_EQ(*s->cpu_quota(), 0.25);
}

TEST(LoadSamplerFake, CgroupV1MemoryLimitAboveMachineFallsBackToMeminfo) {
  FakeTree t;
  write_v1(t);
  t.write("cg/memory/mem/grp/memory.limit_in_bytes", "17179869184\n");  // 16 GiB > 8 GiB total
  auto s = LoadSampler::create(LoadScope::kCgroup, options_for(t));
  ASSERT_TRUE(s.ok()) << s.error().str();
  auto r = s->sample();
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->mem_total_mb, 8192u);
  EXPECT_EQ(r->mem_free_mb, 4096u);
}

// systemd-style v1: cpu and cpuacct co-mounted at ROOT/cpu,cpuacct, with symlinks cpu and cpuacct.
TEST(LoadSamplerFake, CgroupV1CoMountedCpuCpuacct) {
  FakeTree t;
  write_common(t);
  t.write("proc/self/cgroup", "5:cpu,cpuacct:/system.slice/osmod.service\n4:memory:/\n0::/\n");
  const std::string d = "cg/cpu,cpuacct/system.slice/osmod.service/";
  t.write(d + "cpu.cfs_quota_us", "200000\n");
  t.write(d + "cpu.cfs_period_us", "100000\n");
  t.write(d + "tasks", "100\n");
  t.write(d + "cpuacct.usage", "9000\n");
  t.symlink("cpu,cpuacct", "cg/cpu");
  t.symlink("cpu,cpuacct", "cg/cpuacct");
  t.write("cg/memory/memory.limit_in_bytes", "9223372036854771712\n");
  auto s = LoadSampler::create(LoadScope::kCgroup, options_for(t));
  ASSERT_TRUE(s.ok()) << s.error().str();
  auto r = s->sample();
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->runnable, 1);
  EXPECT_DOUBLE_EQ(r->cpus, 2);  // quota 2 of 4 allowed CPUs (no cpuset hierarchy)
  EXPECT_EQ(r->cpu_usage_us, 9u);
  EXPECT_EQ(r->mem_total_mb, 8192u);
  EXPECT_EQ(s->describe(), "cgroup v1 /system.slice/osmod.service (cpu quota 2)");
}

TEST(LoadSamplerFake, CgroupV2) {
  FakeTree t;
  write_v2(t);
  auto s = LoadSampler::create(LoadScope::kCgroup, options_for(t));
  ASSERT_TRUE(s.ok()) << s.error().str();
  auto r = s->sample();
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->runnable, 2);  // 100 and 102 (in sub/)
  EXPECT_DOUBLE_EQ(r->cpus, 1.5);
  EXPECT_EQ(r->cpu_usage_us, 42u);
  EXPECT_EQ(r->mem_total_mb, 8192u);  // memory.max "max": the machine's
  EXPECT_EQ(r->mem_free_mb, 4096u);
  EXPECT_EQ(s->describe(), "cgroup v2 /tb/n2 (cpu quota 1.5)");
  EXPECT_EQ(resolve_auto_scope(options_for(t)), LoadScope::kCgroup);
}

TEST(LoadSamplerFake, CgroupV2MemoryLimitAndNoQuota) {
  FakeTree t;
  write_v2(t);
  t.write("cg/tb/n2/cpu.max", "max 100000\n");
  t.write("cg/tb/n2/memory.max", "2147483648\n");
  t.write("cg/tb/n2/memory.current", "1073741824\n");
  t.write("cg/tb/n2/memory.stat", "anon 1\ninactive_file 536870912\n");
  auto s = LoadSampler::create(LoadScope::kCgroup, options_for(t));
  ASSERT_TRUE(s.ok()) << s.error().str();
  auto r = s->sample();
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_DOUBLE_EQ(r->cpus, 4);  // cpuset 0-3, no quota
  EXPECT_EQ(r->mem_total_mb, 2048u);
  EXPECT_EQ(r->mem_free_mb, 1536u);  // 2048 - (1024 - 512)
  EXPECT_EQ(s->describe(), "cgroup v2 /tb/n2 (no cpu quota)");
  EXPECT_EQ(resolve_auto_scope(options_for(t)), LoadScope::kMachine);
}

TEST(LoadSamplerFake, ExplicitCgroupPath) {
  FakeTree t;
  write_v2(t);
  t.write("cg/other/cgroup.threads", "101\n");
  t.write("cg/other/cpu.stat", "usage_usec 7\n");
  auto o = options_for(t);
  o.cgroup_path = "/other";
  auto s = LoadSampler::create(LoadScope::kCgroup, o);
  ASSERT_TRUE(s.ok()) << s.error().str();
  auto r = s->sample();
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->runnable, 0);
  EXPECT_EQ(r->cpu_usage_us, 7u);
  EXPECT_DOUBLE_EQ(r->cpus, 4);  // no cpuset file here: our affinity ∩ online
}

TEST(LoadSamplerFake, Machine) {
  FakeTree t;
  write_common(t);
  t.write("sys/devices/system/cpu/online", "0-2\n");  // CPU 3 is offline
  auto s = LoadSampler::create(LoadScope::kMachine, options_for(t));
  ASSERT_TRUE(s.ok()) << s.error().str();
  auto r = s->sample();
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->runnable, 2);  // procs_running 3 minus the sampler
  EXPECT_DOUBLE_EQ(r->cpus, 3);
  EXPECT_EQ(r->mem_total_mb, 8192u);
  EXPECT_EQ(r->mem_free_mb, 4096u);
  EXPECT_EQ(r->cpu_usage_us, 160u * (1'000'000u / static_cast<unsigned>(sysconf(_SC_CLK_TCK))));
  EXPECT_EQ(s->describe(), "machine (speed 1.00)");
}

// Speed is relative to the reference CPU and comes only from the configuration: the clock rate
// in cpuinfo/cpufreq must not scale the load (2 runnable tasks on 0.5 CPU are a load of 4.0 on a
// 3 GHz machine too).
TEST(LoadSamplerFake, SpeedIsConfigurationNotClockRate) {
  FakeTree t;
  write_common(t);
  t.write("proc/self/status", "Cpus_allowed_list:\t1\n");
  t.write("proc/cpuinfo",
          "processor\t: 0\ncpu MHz\t\t: 1000.000\n\nprocessor\t: 1\ncpu MHz\t\t: 3000.500\n");
  auto s = LoadSampler::create(LoadScope::kMachine, options_for(t));
  ASSERT_TRUE(s.ok()) << s.error().str();
  EXPECT_DOUBLE_EQ(s->sample()->speed, 1.0);
  auto o = options_for(t);
  o.speed = 1.25;
  auto s2 = LoadSampler::create(LoadScope::kMachine, o);
  ASSERT_TRUE(s2.ok());
  EXPECT_DOUBLE_EQ(s2->sample()->speed, 1.25);
}

TEST(LoadSamplerFake, Errors) {
  FakeTree t;
  write_common(t);
  t.mkdir("cg");
  auto none = LoadSampler::create(LoadScope::kCgroup, options_for(t));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("neither a cgroup v2 mount"), std::string::npos)
      << none.error().message;
  EXPECT_EQ(resolve_auto_scope(options_for(t)), LoadScope::kMachine);

  write_v2(t);
  t.write("proc/self/cgroup", "0::/missing\n");
  auto missing = LoadSampler::create(LoadScope::kCgroup, options_for(t));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/missing"), std::string::npos) << missing.error().message;

  t.write("proc/self/cgroup", "0::/tb/n2\n");
  t.write("cg/tb/n2/cpu.max", "garbage\n");
  auto bad = LoadSampler::create(LoadScope::kCgroup, options_for(t));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("cpu.max"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace osmo::platform
