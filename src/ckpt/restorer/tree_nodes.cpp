// SPDX-License-Identifier: GPL-2.0-or-later
// Building a process tree at restore (child.hpp, TreePlan): every node is cloned by its
// parent's process with its recorded pid, before that parent parks, so the parent links are the
// kernel's own (wait() in the restored parent finds its children, getppid() is right).
//
//   init --chain--> main process --clone3(set_tid)--> child --clone3(set_tid)--> grandchild
//        --clone3(set_tid)--> orphan of the original (its parent was the job's PID 1)
//
// Sessions and groups follow the shell's rules: a node that led its session calls setsid()
// first; one that led its group calls setpgid(0, 0); a member of another group joins it with
// setpgid(0, pgid), and its parent also calls setpgid(child, pgid) right after the clone (as a
// shell does), so the group exists before the next sibling joins it. Children are created in
// pid order, so a pipeline's leader exists before its members. A zombie node does the same,
// then dies at once with its recorded wait status; its parent waits (WNOWAIT, without reaping
// it) until it is a zombie before it goes on, and drops the SIGCHLD it got: the image's pending
// signals carry whatever the original had pending. A process group whose leader is gone gets a
// placeholder: a zombie node with the leader's pid, created by the first member's parent just
// before its other children, reaped by it once they are all created (the group lives on in its
// members, as it did in the original).
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <ctime>

#include "ckpt/restorer/child.hpp"
#include "ckpt/restorer/clone3.hpp"
#include "ckpt/restorer/messages.hpp"

namespace osmo::ckpt::restorer {
namespace {

// How long a member waits for its group's leader, built elsewhere in the tree, to exist. Generous:
// on a loaded node (a testbed at a quarter of a CPU) a process can wait seconds to be scheduled.
constexpr long kGroupWaitSeconds = 10;

// A zombie node ends as the original did: exit code, or death by the same signal.
[[noreturn]] void die_as(int sock, const TreeProcess& p) {
  ::close(sock);
  const int st = p.exit_status;
  if (WIFSIGNALED(st)) {
    const int sig = WTERMSIG(st);
    rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);  // a core-dumping signal must not write a core here
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sig, &dfl, nullptr);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    ::sigprocmask(SIG_UNBLOCK, &one, nullptr);
    ::kill(::getpid(), sig);
  }
  ::_exit(WEXITSTATUS(st));
}

}  // namespace

Status reap_placeholder(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return errno_error("cannot reap the placeholder of process group {}", pid);
  return ok_status();
}

Status node_ids(const TreeProcess& p) {
  if (p.sid == p.pid) {
    if (::setsid() < 0) return errno_error("pid {}: cannot lead its session again (setsid)", p.pid);
    return ok_status();
  }
  if (p.sid != 0 && ::getsid(0) != p.sid)
    return make_error("pid {}: its session {} cannot be rebuilt here (it is in session {})", p.pid, p.sid,
                      ::getsid(0));
  if (p.pgid == p.pid) {
    if (::setpgid(0, 0) != 0) return errno_error("pid {}: cannot lead its process group again (setpgid)", p.pid);
  } else if (p.pgid != 0 && ::getpgrp() != p.pgid) {
    // The group's leader may be built by another branch of the tree at the same time (an orphan
    // cloned by init joins the group of the main process, which makes it in child_main): until
    // the leader has called setpgid(0, 0) the group does not exist and setpgid says EPERM. Wait
    // for it, bounded; a leader that fails ends the whole restore anyway.
    timespec start{};
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    while (::setpgid(0, p.pgid) != 0) {
      timespec now{};
      ::clock_gettime(CLOCK_MONOTONIC, &now);
      if (errno != EPERM || now.tv_sec - start.tv_sec >= kGroupWaitSeconds)
        return errno_error("pid {}: cannot join process group {} (setpgid)", p.pid, p.pgid);
      timespec nap{0, 200'000};
      ::nanosleep(&nap, nullptr);
    }
  }
  return ok_status();
}

Status spawn_node(int sock, const TreePlan& tree, std::size_t i) {
  const TreeNodePlan& n = tree.nodes[i];
  const bool live = n.plan >= 0;
  pid_t want = n.p.pid;
  int pidfd = -1;
  clone_args a{};
  a.flags = live ? CLONE_PIDFD : 0;
  a.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  a.exit_signal = SIGCHLD;
  a.set_tid = reinterpret_cast<std::uint64_t>(&want);
  a.set_tid_size = 1;
  long child = raw_clone3(&a);
  if (child < 0)
    return errno_error("cannot create pid {} ({} of the tree, clone3 with set_tid)", want, live ? "a process" : "a zombie");
  if (child == 0) {
    ::prctl(PR_SET_NAME, live ? "osmo-node" : "osmo-zombie", 0, 0, 0);
    if (auto s = node_ids(n.p); !s.ok()) die_with(sock, s.error());
    if (!live) die_as(sock, n.p);
    // The plan lives in the caller's memory, which this process has a copy of.
    child_main(sock, const_cast<ChildPlan&>(tree.plans[static_cast<std::size_t>(n.plan)]));
  }
  // As a shell does: the group exists before the next sibling is created to join it.
  if (n.p.sid != n.p.pid && n.p.pgid != 0 && ::getpgrp() != n.p.pgid) (void)::setpgid(static_cast<pid_t>(child), n.p.pgid);
  if (live) {
    Status s = send_msg(sock, MsgTag::kPidfd, &n.p.pid, sizeof n.p.pid, pidfd);
    ::close(pidfd);
    return s;
  }
  siginfo_t si{};
  while (::waitid(P_PID, static_cast<id_t>(child), &si, WEXITED | WNOWAIT) != 0) {
    if (errno != EINTR) return errno_error("cannot wait for zombie {} to end", want);
  }
  return ok_status();
}

Status spawn_children(int sock, const TreePlan& tree, std::size_t node) {
  const auto& kids = tree.nodes[node].children;
  if (kids.empty()) return ok_status();
  for (std::size_t c : kids) OSMO_TRY(spawn_node(sock, tree, c));
  // Group placeholders (created first) have done their work: the members joined their groups.
  for (std::size_t c : kids)
    if (tree.nodes[c].placeholder) OSMO_TRY(reap_placeholder(tree.nodes[c].p.pid));
  // Every signal is blocked here: the SIGCHLDs of the zombies are pending. Drop them.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  timespec zero{};
  while (::sigtimedwait(&chld, nullptr, &zero) > 0) {
  }
  return ok_status();
}

}  // namespace osmo::ckpt::restorer
