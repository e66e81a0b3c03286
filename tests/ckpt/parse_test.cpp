// SPDX-License-Identifier: GPL-2.0-or-later
// /proc parsers, the syscall-restart rule, and `osmo restore --fd` stand-in specs.
#include <sys/syscall.h>

#include <gtest/gtest.h>

#include "ckpt/ckpt.hpp"
#include "ckpt/proc.hpp"
#include "ckpt/ptrace.hpp"

namespace osmo::ckpt {
namespace {

TEST(StandInSpec, ParsesPathsAndNull) {
  auto a = parse_stand_in_spec("251=/tmp/out");
  ASSERT_TRUE(a.ok()) << a.error().str();
  EXPECT_EQ(a->fd, 251);
  EXPECT_EQ(a->path, "/tmp/out");
  EXPECT_EQ(a->text, "251=/tmp/out");
  auto n = parse_stand_in_spec("0=null");
  ASSERT_TRUE(n.ok()) << n.error().str();
  EXPECT_EQ(n->fd, 0);
  EXPECT_EQ(n->path, "/dev/null");
  auto eq = parse_stand_in_spec("3=a=b");  // only the first '=' separates
  ASSERT_TRUE(eq.ok());
  EXPECT_EQ(eq->path, "a=b");
  EXPECT_EQ(parse_stand_in_spec("./null").error().message,
            "--fd ./null: expected N=PATH or N=null (N the fd number the image recorded)");
  EXPECT_EQ(parse_stand_in_spec("x=null").error().message, "--fd x=null: 'x' is not an fd number");
  EXPECT_EQ(parse_stand_in_spec("-1=null").error().message, "--fd -1=null: '-1' is not an fd number");
  EXPECT_EQ(parse_stand_in_spec("=null").error().message, "--fd =null: '' is not an fd number");
  EXPECT_EQ(parse_stand_in_spec("5=").error().message, "--fd 5=: no file after '=' (a path, or null for /dev/null)");
  EXPECT_EQ(parse_stand_in_spec("99999999999999999999=null").error().message,
            "--fd 99999999999999999999=null: fd 99999999999999999999 is out of range (0-1048576)");
}

TEST(StandInSpec, ResolverRefusesAnFdGivenTwice) {
  std::vector<StandInSpec> specs{*parse_stand_in_spec("4=null"), *parse_stand_in_spec("4=/tmp/x")};
  auto r = StandInResolver::make(specs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "--fd 4 given twice (--fd 4=null and --fd 4=/tmp/x)");
}

TEST(ProcParse, Maps) {
  auto m = parse_maps(
      "55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n"
      "7f1e2a000000-7f1e2a200000 r-xp 00026000 fe:00 332383                     /usr/lib/libc.so.6\n"
      "7f1e2b000000-7f1e2b001000 rw-s 00000000 00:01 1234                       /memfd:x (deleted)\n");
  ASSERT_TRUE(m.ok()) << m.error().str();
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].name, "[heap]");
  EXPECT_TRUE((*m)[0].w);
  EXPECT_FALSE((*m)[0].x);
  EXPECT_EQ((*m)[1].offset, 0x26000u);
  EXPECT_EQ((*m)[1].dev_major, 0xfeu);
  EXPECT_EQ((*m)[1].inode, 332383u);
  EXPECT_TRUE((*m)[1].x);
  EXPECT_TRUE((*m)[2].shared);
  EXPECT_TRUE((*m)[2].deleted());
  EXPECT_EQ((*m)[2].path_without_deleted(), "/memfd:x");
  EXPECT_FALSE(parse_maps("garbage\n").ok());
}

TEST(ProcParse, Status) {
  auto s = parse_status("Name:\tcat\nUmask:\t0027\nState:\tS (sleeping)\nTracerPid:\t0\n"
                        "Uid:\t1000\t1001\t1002\t1003\nGid:\t5\t6\t7\t8\nGroups:\t4 24 27 \n"
                        "NSpid:\t4242\t7\nNSpgid:\t4200\t3\nNSsid:\t100\t0\nThreads:\t3\n"
                        "CapInh:\t0000000000000021\nCapPrm:\t000001fffffeffff\nCapEff:\t000001fffffefbff\n"
                        "CapBnd:\t000001ffffffffef\nCapAmb:\t0000000000000001\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->threads, 3);
  EXPECT_EQ(s->umask, 027u);
  EXPECT_EQ(s->uid[1], 1001u);
  EXPECT_EQ(s->gid[2], 7u);
  EXPECT_EQ(s->groups, (std::vector<std::uint32_t>{4, 24, 27}));
  EXPECT_EQ(s->nspid.back(), 7);
  EXPECT_EQ(s->nspgid, (std::vector<pid_t>{4200, 3}));
  EXPECT_EQ(s->nssid, (std::vector<pid_t>{100, 0}));
  EXPECT_EQ(s->cap_inh, 0x21u);
  EXPECT_EQ(s->cap_prm, 0x1fffffeffffu);
  EXPECT_EQ(s->cap_eff, 0x1fffffefbffu);
  EXPECT_EQ(s->cap_bnd, 0x1ffffffffefu);
  EXPECT_EQ(s->cap_amb, 1u);
  EXPECT_FALSE(parse_status("NSpid:\t1\nThreads:\t1\nCapEff:\tzz\n").ok());
}

TEST(ProcParse, Fdinfo) {
  auto f = parse_fdinfo("pos:\t277\nflags:\t02100001\nmnt_id:\t30\nino:\t12\n");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->pos, 277u);
  EXPECT_EQ(f->flags, 02100001u);
}

TEST(SyscallRestart, RewindsOnlyInterruptedSyscalls) {
  user_regs_struct r{};
  r.rip = 0x1000;
  r.orig_rax = SYS_read;
  r.rax = static_cast<unsigned long long>(-512);  // -ERESTARTSYS
  auto a = with_syscall_restart(r);
  EXPECT_EQ(a.rip, 0xffeu);
  EXPECT_EQ(a.rax, static_cast<unsigned long long>(SYS_read));
  EXPECT_EQ(static_cast<long long>(a.orig_rax), -1);

  r.rax = static_cast<unsigned long long>(-516);  // -ERESTART_RESTARTBLOCK
  auto b = with_syscall_restart(r);
  EXPECT_EQ(b.rip, 0xffeu);
  EXPECT_EQ(b.rax, static_cast<unsigned long long>(SYS_restart_syscall));

  r.rax = 5;  // completed read: never rewound
  auto c = with_syscall_restart(r);
  EXPECT_EQ(c.rip, 0x1000u);
  EXPECT_EQ(c.rax, 5u);

  r.orig_rax = static_cast<unsigned long long>(-1);  // not in a syscall
  r.rax = static_cast<unsigned long long>(-512);
  auto d = with_syscall_restart(r);
  EXPECT_EQ(d.rip, 0x1000u);
}

}  // namespace
}  // namespace osmo::ckpt
