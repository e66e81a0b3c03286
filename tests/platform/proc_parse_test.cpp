// SPDX-License-Identifier: GPL-2.0-or-later
// Parsers of procfs/cgroupfs formats, on literal text taken from real machines.
#include "platform/linux/proc_parse.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

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

TEST(ProcParse, PidStatAllFieldsWeUse) {
  // A real line (python3 -c with a name full of traps), fields 1-52.
  const std::string text =
      "4242 (a) b) (c) S 1 4242 4242 0 -1 4194560 1200 0 3 0 150 25 7 9 20 0 1 0 98765 "
      "123456789 3210 18446744073709551615 1 1 0 0 0 0 0 16781312 2 0 0 0 17 1 0 0 0 0 0 0 0 "
      "0 0 0 0 0 0\n";
  auto r = parse_pid_stat(text);
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->state, 'S');
  EXPECT_EQ(r->utime, 150u);
  EXPECT_EQ(r->stime, 25u);
  EXPECT_EQ(r->cutime, 7u);
  EXPECT_EQ(r->cstime, 9u);
  EXPECT_EQ(r->start_ticks, 98765u);
  EXPECT_EQ(r->rss_pages, 3210);

  std::string_view f[64];
  const std::size_t n = split_pid_stat(text, f);
  EXPECT_EQ(n, 52u);
  EXPECT_TRUE(f[0].empty());
  EXPECT_EQ(f[1], "4242");
  EXPECT_EQ(f[2], "a) b) (c");
  EXPECT_EQ(f[3], "S");
  EXPECT_EQ(f[52], "0");
  std::string_view few[5];
  EXPECT_EQ(split_pid_stat(text, few), 4u);  // stops where the room ends
  EXPECT_EQ(few[4], "1");
}

TEST(ProcParse, BadPidStatIsRefusedWithTheReason) {
  std::string_view f[8];
  EXPECT_EQ(split_pid_stat("", f), 0u);
  EXPECT_EQ(split_pid_stat("42 x) R", f), 0u);
  EXPECT_EQ(split_pid_stat("42 (x R", f), 0u);
  auto no_paren = parse_pid_stat("42 x R 1 2 3");
  ASSERT_FALSE(no_paren.ok());
  EXPECT_EQ(no_paren.error().message, "bad /proc/PID/stat: no ')'");
  // Cut before field 24 (rss): a truncated read must not pass for a process.
  std::string text = osmo::testing::fake_pid_stat(42, 'R', 777);
  auto cut = parse_pid_stat(text.substr(0, text.rfind(' ')));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().message, "bad /proc/PID/stat: too few fields");
  std::string bad_start = text;
  bad_start.replace(bad_start.find(" 777 "), 5, " 7x7 ");
  auto bs = parse_pid_stat(bad_start);
  ASSERT_FALSE(bs.ok());
  EXPECT_EQ(bs.error().message, "bad /proc/PID/stat: start time '7x7'");
  auto two_letters = parse_pid_stat("42 (x) RS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
  EXPECT_FALSE(two_letters.ok());
}

TEST(ProcParse, PidStatus) {
  const char* text =
      "Name:\tcat\nUmask:\t0027\nState:\tS (sleeping)\nTgid:\t7\nTracerPid:\t12\n"
      "Uid:\t1000\t1001\t1002\t1003\nGid:\t5\t6\t7\t8\nFDSize:\t64\nGroups:\t4 24 27 \n"
      "NSpid:\t4242\t7\nNSpgid:\t4200\t3\nNSsid:\t100\t0\nVmRSS:\t    1234 kB\nThreads:\t3\n"
      "CapInh:\t0000000000000021\nCapPrm:\t000001fffffeffff\nCapEff:\t000001fffffefbff\n"
      "CapBnd:\t000001ffffffffef\nCapAmb:\t0000000000000001\nCpus_allowed_list:\t0-1\n";
  auto s = parse_pid_status(text);
  ASSERT_TRUE(s.ok()) << s.error().str();
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->threads, 3);
  EXPECT_EQ(s->tracer_pid, 12);
  EXPECT_EQ(s->umask, 027u);
  EXPECT_TRUE(s->has_uid && s->has_gid && s->has_groups);
  EXPECT_EQ(s->uid, (std::array<std::uint32_t, 4>{1000, 1001, 1002, 1003}));
  EXPECT_EQ(s->gid, (std::array<std::uint32_t, 4>{5, 6, 7, 8}));
  EXPECT_EQ(s->groups, (std::vector<std::uint32_t>{4, 24, 27}));
  EXPECT_EQ(s->nspid, (std::vector<pid_t>{4242, 7}));
  EXPECT_EQ(s->nspgid, (std::vector<pid_t>{4200, 3}));
  EXPECT_EQ(s->nssid, (std::vector<pid_t>{100, 0}));
  EXPECT_EQ(s->cap_inh, 0x21u);
  EXPECT_EQ(s->cap_eff, 0x1fffffefbffu);
  EXPECT_EQ(s->cap_amb, 1u);

  // Lines that are absent leave the defaults and say so; an empty Groups line is no groups.
  auto sparse = parse_pid_status("Name:\tx\nGroups:\t\n");
  ASSERT_TRUE(sparse.ok());
  EXPECT_FALSE(sparse->has_uid);
  EXPECT_FALSE(sparse->has_gid);
  EXPECT_TRUE(sparse->has_groups);
  EXPECT_TRUE(sparse->groups.empty());
  EXPECT_EQ(sparse->threads, 0);
  EXPECT_FALSE(parse_pid_status("")->has_groups);
}

TEST(ProcParse, BadPidStatusNamesTheLine) {
  for (const char* line : {"CapEff:\tzz", "Uid:\t1 2 3", "Uid:\t1 2 3 4 5", "Gid:\t1 2 -3 4",
                           "Groups:\t4 x", "Threads:\t", "Threads:\t1 2", "Umask:\t0089",
                           "NSpid:\t12a", "TracerPid:\t99999999999"}) {
    auto s = parse_pid_status(std::string("Name:\tx\n") + line + "\nThreads:\t1\n");
    ASSERT_FALSE(s.ok()) << line;
    EXPECT_EQ(s.error().message, fmt::format("malformed /proc status line '{}'", line));
  }
}

TEST(ProcParse, SmapsRangesAndVmFlags) {
  const char* text =
      "55d0c4a00000-55d0c4a21000 rw-p 00000000 00:00 0                          [heap]\n"
      "Size:                132 kB\n"
      "AnonHugePages:         0 kB\n"
      "VmFlags: rd wr mr mw me ac sd \n"
      "7f1c2a400000-7f1c2a600000 rw-p 00000000 08:01 1234   /tmp/a-b c:d (deleted)\n"
      "FilePmdMapped:        0 kB\n"
      "VmFlags: rd wr mr mw me dp gd\n";
  auto r = parse_smaps(text);
  ASSERT_TRUE(r.ok()) << r.error().str();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].start, 0x55d0c4a00000u);
  EXPECT_EQ((*r)[0].end, 0x55d0c4a21000u);
  EXPECT_EQ((*r)[0].vm_flags, "rd wr mr mw me ac sd");
  EXPECT_EQ((*r)[1].start, 0x7f1c2a400000u);
  EXPECT_TRUE(has_vm_flag((*r)[1].vm_flags, "dp"));
  EXPECT_TRUE(has_vm_flag((*r)[1].vm_flags, "gd"));
  EXPECT_FALSE(has_vm_flag((*r)[0].vm_flags, "dp"));
  EXPECT_FALSE(has_vm_flag("rd wrx", "wr"));  // whole words only
  EXPECT_FALSE(has_vm_flag("", "rd"));
  EXPECT_TRUE(parse_smaps("")->empty());
  auto bad = parse_smaps("55d0c4a21000-55d0c4a00000 rw-p 0 00:00 0\n");  // ends before it starts
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "malformed smaps line '55d0c4a21000-55d0c4a00000 rw-p 0 00:00 0'");
  EXPECT_FALSE(parse_smaps("55d0c4a0000g-55d0c4a21000 rw-p 0 00:00 0\n").ok());
}

TEST(ProcParse, PidLists) {
  pid_t room[2] = {0, 0};
  EXPECT_EQ(parse_pid_list("", room), 0u);
  EXPECT_EQ(parse_pid_list("123 ", room), 1u);
  EXPECT_EQ(room[0], 123);
  // More than fit: all are counted, the first ones stored.
  EXPECT_EQ(parse_pid_list("7 8 9\n", room), 3u);
  EXPECT_EQ(room[0], 7);
  EXPECT_EQ(room[1], 8);
  EXPECT_EQ(parse_pid_list("7 8 9", {}), 3u);
  EXPECT_EQ(parse_pid_list("7 x", room), std::nullopt);
  EXPECT_EQ(parse_pid_list("7-", room), std::nullopt);
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
