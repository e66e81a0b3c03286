// SPDX-License-Identifier: GPL-2.0-or-later
// plan_session(): which placeholder processes rebuild the restored process's session and
// process group, for each shape a job can have (pure, no processes).
#include <gtest/gtest.h>

#include "ckpt/kinds.hpp"

namespace osmo::ckpt {
namespace {

SessionPlan plan(pid_t pid, pid_t sid, pid_t pgid) {
  auto p = plan_session(pid, sid, pgid);
  EXPECT_TRUE(p.ok()) << p.error().str();
  return p.ok() ? *p : SessionPlan{};
}

TEST(SessionPlan, SessionLeaderCallsSetsidItself) {
  SessionPlan p = plan(100, 100, 100);
  EXPECT_TRUE(p.target_setsid);
  EXPECT_FALSE(p.target_setpgid);
  EXPECT_EQ(p.session_placeholder, 0);
  EXPECT_EQ(p.group_placeholder, 0);
  EXPECT_FALSE(p.init_setsid);
}

TEST(SessionPlan, JobLeaderUnderAShell) {
  // `sleep 100 &` from an interactive shell 40: its own group, the shell's session.
  SessionPlan p = plan(100, 40, 100);
  EXPECT_EQ(p.session_placeholder, 40);
  EXPECT_EQ(p.group_placeholder, 0);
  EXPECT_TRUE(p.target_setpgid);
  EXPECT_FALSE(p.target_setsid);
}

TEST(SessionPlan, PipelineMemberNeedsBothPlaceholders) {
  // `a | b`: b (100) is in a's group (99), in the shell's session (40).
  SessionPlan p = plan(100, 40, 99);
  EXPECT_EQ(p.session_placeholder, 40);
  EXPECT_EQ(p.group_placeholder, 99);
  EXPECT_FALSE(p.target_setpgid);
}

TEST(SessionPlan, InTheSessionLeadersGroup) {
  // Started by a shell without job control: the shell's session and group.
  SessionPlan p = plan(100, 40, 40);
  EXPECT_EQ(p.session_placeholder, 40);
  EXPECT_EQ(p.group_placeholder, 0);
  EXPECT_FALSE(p.target_setpgid);
}

TEST(SessionPlan, SessionOneIsLedByOurInit) {
  SessionPlan p = plan(100, 1, 1);
  EXPECT_TRUE(p.init_setsid);
  EXPECT_EQ(p.session_placeholder, 0);
  EXPECT_EQ(p.group_placeholder, 0);
  SessionPlan q = plan(100, 1, 77);
  EXPECT_TRUE(q.init_setsid);
  EXPECT_EQ(q.group_placeholder, 77);
}

TEST(SessionPlan, InvisibleSessionKeepsTheRestorers) {
  SessionPlan p = plan(100, 0, 0);
  EXPECT_EQ(p.session_placeholder, 0);
  EXPECT_FALSE(p.target_setsid);
  EXPECT_FALSE(p.target_setpgid);
  EXPECT_TRUE(plan(100, 0, 100).target_setpgid);
}

TEST(SessionPlan, InvisibleSessionStillRebuildsAVisibleGroup) {
  // A PID namespace whose session leader is outside it, under a shell with job control there:
  // the job's group leader (2) is visible but not in the image. It gets a placeholder in the
  // restorer's session, or the job's children could not join their group.
  SessionPlan p = plan(100, 0, 2);
  EXPECT_EQ(p.session_placeholder, 0);
  EXPECT_EQ(p.group_placeholder, 2);
  EXPECT_FALSE(p.target_setpgid);
  EXPECT_FALSE(plan_session(100, 0, 1).ok());  // pid 1 is the restore's init
}

TEST(SessionPlan, RefusesWhatCannotBeRebuilt) {
  EXPECT_FALSE(plan_session(100, 40, 1).ok());  // group 1 outside session 1: pid 1 is our init
  EXPECT_FALSE(plan_session(1, 1, 1).ok());
}

}  // namespace
}  // namespace osmo::ckpt
