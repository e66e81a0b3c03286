// SPDX-License-Identifier: GPL-2.0-or-later
// Building the chain of placeholders down to the new process (chain.hpp).
#include "ckpt/restorer/chain.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>

#include "ckpt/restorer/clone3.hpp"
#include "ckpt/restorer/messages.hpp"

namespace osmo::ckpt::restorer {
namespace {

const char* role_name(ChainStep::Role r) {
  switch (r) {
    case ChainStep::Role::kSession: return "session placeholder";
    case ChainStep::Role::kGroup: return "process group placeholder";
    case ChainStep::Role::kTarget: return "the restored process";
  }
  return "?";
}

// A placeholder recreates its session or group, creates the next step inside it, and exits;
// the new process prepares itself (child_main).
[[noreturn]] void chain_main(int sock, ChildPlan& plan, const std::vector<ChainStep>& steps, std::size_t i) {
  const ChainStep& st = steps[i];
  if (st.role == ChainStep::Role::kTarget) child_main(sock, plan);
  if (st.role == ChainStep::Role::kSession && ::setsid() < 0)
    die_with(sock, errno_error("session placeholder pid {}: setsid failed", st.tid));
  if (st.role == ChainStep::Role::kGroup && ::setpgid(0, 0) != 0)
    die_with(sock, errno_error("process group placeholder pid {}: setpgid failed", st.tid));
  ::prctl(PR_SET_NAME, st.role == ChainStep::Role::kSession ? "osmo-session" : "osmo-pgrp", 0, 0, 0);
  if (auto s = chain_spawn(sock, plan, steps, i + 1, false); !s.ok()) die_with(sock, s.error());
  ::_exit(0);
}

}  // namespace

std::vector<ChainStep> chain_of(const ChildPlan& plan) {
  std::vector<ChainStep> steps;
  if (plan.session.session_placeholder > 0)
    steps.push_back({plan.session.session_placeholder, ChainStep::Role::kSession});
  if (plan.session.group_placeholder > 0)
    steps.push_back({plan.session.group_placeholder, ChainStep::Role::kGroup});
  steps.push_back({plan.img->task.pid, ChainStep::Role::kTarget});
  return steps;
}

// From a placeholder the next step is created with CLONE_PARENT, so it is init's child too
// (clone3 then wants exit_signal 0: the child inherits the placeholder's SIGCHLD).
Status chain_spawn(int sock, ChildPlan& plan, const std::vector<ChainStep>& steps, std::size_t i, bool from_init) {
  const ChainStep& st = steps[i];
  bool target = st.role == ChainStep::Role::kTarget;
  pid_t want = st.tid;
  int pidfd = -1;
  clone_args a{};
  a.flags = (target ? CLONE_PIDFD : 0) | (from_init ? 0 : CLONE_PARENT);
  a.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  a.exit_signal = from_init ? SIGCHLD : 0;
  a.set_tid = reinterpret_cast<std::uint64_t>(&want);
  a.set_tid_size = 1;
  long child = raw_clone3(&a);
  if (child < 0) return errno_error("cannot create pid {} ({}, clone3 with set_tid)", want, role_name(st.role));
  if (child == 0) chain_main(sock, plan, steps, i);
  if (target) {
    const std::int32_t image_pid = plan.img->task.pid;
    Status s = send_msg(sock, MsgTag::kPidfd, &image_pid, sizeof image_pid, pidfd);
    ::close(pidfd);
    return s;
  }
  return ok_status();
}

}  // namespace osmo::ckpt::restorer
