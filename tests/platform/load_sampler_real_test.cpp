// SPDX-License-Identifier: GPL-2.0-or-later
// LoadSampler on this machine's real /proc, /sys and cgroup tree (no root needed).
#include <gtest/gtest.h>
#include <sched.h>

#include <chrono>

#include "platform/linux/cgroup_layout.hpp"
#include "platform/linux/load_sampler.hpp"

namespace osmo::platform {
namespace {

void burn_cpu_ms(int ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  volatile unsigned long x = 0;
  while (std::chrono::steady_clock::now() < end) x = x + 1;
}

TEST(LoadSamplerReal, MachineScope) {
  auto s = LoadSampler::create(LoadScope::kMachine);
  ASSERT_TRUE(s.ok()) << s.error().str();
  auto a = s->sample();
  ASSERT_TRUE(a.ok()) << a.error().str();
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_DOUBLE_EQ(a->cpus, CPU_COUNT(&set));
  EXPECT_GT(a->mem_total_mb, 0u);
  EXPECT_LE(a->mem_free_mb, a->mem_total_mb);
  EXPECT_GT(a->speed, 0);
  EXPECT_GE(a->runnable, 0);
  burn_cpu_ms(50);
  auto b = s->sample();
  ASSERT_TRUE(b.ok()) << b.error().str();
  EXPECT_GT(b->cpu_usage_us, a->cpu_usage_us);  // we just used CPU time ourselves
}

TEST(LoadSamplerReal, CgroupScopeOfThisProcess) {
  auto layout = CgroupLayout::detect();
  ASSERT_TRUE(layout.ok()) << layout.error().str();
  auto s = LoadSampler::create(LoadScope::kCgroup);
  ASSERT_TRUE(s.ok()) << s.error().str();
  std::string d = s->describe();
  EXPECT_EQ(d.rfind(layout->version() == CgroupVersion::kV2 ? "cgroup v2 " : "cgroup v1 ", 0), 0u)
      << d;
  auto a = s->sample();
  ASSERT_TRUE(a.ok()) << a.error().str();
  EXPECT_GT(a->cpus, 0);
  EXPECT_GT(a->mem_total_mb, 0u);
  burn_cpu_ms(50);
  auto b = s->sample();
  ASSERT_TRUE(b.ok()) << b.error().str();
  EXPECT_GT(b->cpu_usage_us, a->cpu_usage_us);  // our CPU time is in our cgroup's counter
  (void)resolve_auto_scope();                   // must not fail whatever the machine
}

}  // namespace
}  // namespace osmo::platform
