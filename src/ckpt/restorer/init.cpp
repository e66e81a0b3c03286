// SPDX-License-Identifier: GPL-2.0-or-later
// init of the restored process's pid namespace (init.hpp).
#include "ckpt/restorer/init.hpp"

#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <csignal>

#include "ckpt/kinds.hpp"
#include "ckpt/restorer/chain.hpp"
#include "ckpt/restorer/clone3.hpp"
#include "ckpt/restorer/messages.hpp"

namespace osmo::ckpt::restorer {
namespace {

volatile sig_atomic_t g_init_child = 0;
void init_forward(int sig) {
  if (g_init_child > 0) ::kill(g_init_child, sig);
}

// Runs in init: never returns.
[[noreturn]] void init_main(int sock, ChildPlan& plan) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // init is a clone of whichever thread restores, and a daemon's thread may block every signal
  // (for a signalfd) or have handlers of its own: init would then never forward a signal, or run
  // the daemon's handler. It starts clean: default dispositions, nothing blocked (the forwarded
  // signals get their handler below; as a namespace's init it ignores the rest when sent from
  // inside).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    die_with(sock, errno_error("cannot make mounts private"));
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    die_with(sock, errno_error("cannot mount a fresh /proc"));
  if (!plan.timens_offsets.empty())
    if (auto s = timens_enter(plan.timens_offsets); !s.ok()) die_with(sock, s.error());
  // Session and group (session.cpp), then the restored process; placeholders are reaped at
  // once, so none is ever seen as a zombie once the restore reports success.
  if (plan.session.init_setsid && ::setsid() < 0)
    die_with(sock, errno_error("init cannot become the leader of session 1 (setsid)"));
  const pid_t child = plan.img->task.pid;
  std::vector<ChainStep> steps = chain_of(plan);
  if (auto s = chain_spawn(sock, plan, steps, 0, true); !s.ok()) die_with(sock, s.error());
  for (const ChainStep& st : steps) {
    if (st.role == ChainStep::Role::kTarget) continue;
    int ws = 0;
    while (::waitpid(st.tid, &ws, 0) < 0 && errno == EINTR) {
    }
  }
  // The other processes of a tree without a parent in it (the original's orphans, adopted by
  // the job's PID 1) are ours too (tree_nodes.cpp).
  // Group placeholders among them first (their members join them), reaped once all exist.
  if (plan.tree != nullptr) {
    const auto& nodes = plan.tree->nodes;
    for (bool placeholders : {true, false})
      for (std::size_t i = 1; i < nodes.size(); i++)
        if (nodes[i].p.ppid == 0 && nodes[i].placeholder == placeholders)
          if (auto s = spawn_node(sock, *plan.tree, i); !s.ok()) die_with(sock, s.error());
    for (std::size_t i = 1; i < nodes.size(); i++)
      if (nodes[i].p.ppid == 0 && nodes[i].placeholder)
        if (auto s = reap_placeholder(nodes[i].p.pid); !s.ok()) die_with(sock, s.error());
  }
  g_init_child = child;
  struct sigaction sa {};
  sa.sa_handler = init_forward;
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT})
    ::sigaction(s, &sa, nullptr);
  // Wait for the caller's verdict: kGo = the process is complete, anything else (or the
  // caller's end closed) = give up. Only once we no longer die with the caller do we say so
  // (kDetached): the caller lets the process run after that, never before (restore.cpp).
  auto verdict = recv_msg(sock, "the caller's verdict", kWaitForever);
  if (!verdict.ok() || verdict->tag != MsgTag::kGo) {
    ::kill(child, SIGKILL);
    ::_exit(127);
  }
  ::prctl(PR_SET_PDEATHSIG, 0);
  if (!send_msg(sock, MsgTag::kDetached).ok()) {
    // The caller is gone: it never let the process run (and its ptrace exit-kill takes it).
    ::kill(child, SIGKILL);
    ::_exit(127);
  }
  ::close(sock);
  ::syscall(SYS_close_range, 0u, ~0u, 0u);
  for (;;) {
    int st = 0;
    pid_t w = ::waitpid(-1, &st, 0);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) ::_exit(127);
    if (w == child) {
      if (WIFEXITED(st)) ::_exit(WEXITSTATUS(st));
      if (WIFSIGNALED(st)) ::_exit(128 + WTERMSIG(st));
    }
  }
}

}  // namespace

Result<InitProcess> start_init(ChildPlan& plan) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return errno_error("cannot create the restore socket pair");
  InitProcess init;
  init.sock.reset(sv[0]);
  clone_args a{};
  a.flags = CLONE_NEWPID | CLONE_NEWNS;
  a.exit_signal = SIGCHLD;
  long pid = raw_clone3(&a);
  if (pid < 0) {
    ::close(sv[1]);
    return errno_error("cannot create the pid namespace for the restored process (clone3)");
  }
  if (pid == 0) {
    ::close(sv[0]);
    init_main(sv[1], plan);
  }
  ::close(sv[1]);
  init.pid = static_cast<pid_t>(pid);
  return init;
}

}  // namespace osmo::ckpt::restorer
