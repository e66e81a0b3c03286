// SPDX-License-Identifier: GPL-2.0-or-later
// The new process before it is seized: what it does to itself (child_main), from a plan the
// caller computed in full beforehand (ChildPlan), and the report it sends when it parks.
//
// It joins its session/group and network namespace, moves the fds it inherited to their
// numbers (fds_child_install), sets cwd/umask/personality/comm (task_child_prepare),
// dispositions and altstack (sig_child_prepare), maps the trampoline (our gate and batch
// executor) in a gap of the image's layout, reports, and parks with every signal blocked, until
// the caller seizes it. Everything after that is done from outside, by injected syscalls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "ckpt/kinds.hpp"
#include "ckpt/model.hpp"

namespace osmo::ckpt::restorer {

struct TreePlan;

// What the new process (and init, building the chain to it) needs; computed by the caller
// before any process exists, so every refusal happens there.
struct ChildPlan {
  const ProcessImage* img = nullptr;
  SessionPlan session;
  std::vector<FdPlanEntry> fds;
  std::vector<int> files;  // fds of the caller the new process keeps (mapped files, exe)
  int netns_fd = -1;
  // The session leader's new controlling terminal (a fd of the caller on the new pty's slave,
  // TerminalImage), or -1: made its controlling terminal before it creates its children.
  int ctty_fd = -1;
  std::vector<std::uint64_t> tramp_candidates;  // where the trampoline may go, best first
  std::string timens_offsets;                   // for init's time namespace; empty: none
  const TreePlan* tree = nullptr;               // the whole tree (one node for a single process)
  std::size_t node = 0;                         // this process's node in it
};

// The processes of a tree restore (tree_nodes.cpp): each node is created by its parent's
// process with its pid (clone3 set_tid), so parent links are real and wait() works; nodes
// without a parent in the tree are init's children; the main process (node 0) comes through
// the session/group chain (chain.hpp). A zombie node is created and dies at once with its
// recorded status, and stays a zombie until its parent reaps it.
struct TreeNodePlan {
  TreeProcess p;
  int plan = -1;                      // index into TreePlan::plans; -1 for a zombie
  bool placeholder = false;           // a zombie that only holds a process group id for its
                                      // members; reaped by its parent once they joined
  std::vector<std::size_t> children;  // node indexes, in creation order
};
struct TreePlan {
  std::vector<TreeNodePlan> nodes;  // nodes[0]: the main process
  std::vector<ChildPlan> plans;     // one per live process, in image order (plans[0]: main)
  std::size_t live() const { return plans.size(); }
};

// Creates node i and, through it, its subtree. Runs in its parent (init or a node's process);
// a live node's pidfd goes to the caller (kPidfd, body: the image pid). Returns in the parent.
Status spawn_node(int sock, const TreePlan& tree, std::size_t i);
// In a node's new process: its session and group (setsid / setpgid), before it creates anything.
Status node_ids(const TreeProcess& p);
// Reaps a group placeholder (a zombie child) once its group has its members.
Status reap_placeholder(pid_t pid);
// In a node's process, before it parks: creates its children, waits for its zombies to be
// zombies, and drops the SIGCHLD they sent (the image's pending signals carry the original's).
Status spawn_children(int sock, const TreePlan& tree, std::size_t node);

// The kReady message: where the trampoline is and what the kept fds became in the new process.
struct ParkedReport {
  std::int32_t pid = 0;     // the image pid of the process that parked
  std::uint64_t tramp = 0;
  int helper_fd_base = 0;   // every fd >= this is ours, closed at the end of the restore
  std::vector<int> files;   // ChildPlan::files, renumbered, same order
};
std::string encode_report(const ParkedReport& r);
// The pid of a report, to find its process (and so its number of files) before decoding it.
Result<std::int32_t> report_pid(const std::string& body);
Result<ParkedReport> decode_report(const std::string& body, std::size_t nfiles);

// Runs in the new process (the last step of the chain, chain.hpp): never returns.
[[noreturn]] void child_main(int sock, ChildPlan& plan);

}  // namespace osmo::ckpt::restorer
