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

namespace osmo::ckpt::restorer {

// What the new process (and init, building the chain to it) needs; computed by the caller
// before any process exists, so every refusal happens there.
struct ChildPlan {
  const ProcessImage* img = nullptr;
  SessionPlan session;
  std::vector<FdPlanEntry> fds;
  std::vector<int> files;  // fds of the caller the new process keeps (mapped files, exe)
  int netns_fd = -1;
  std::vector<std::uint64_t> tramp_candidates;  // where the trampoline may go, best first
  std::string timens_offsets;                   // for init's time namespace; empty: none
};

// The kReady message: where the trampoline is and what the kept fds became in the new process.
struct ParkedReport {
  std::uint64_t tramp = 0;
  int helper_fd_base = 0;   // every fd >= this is ours, closed at the end of the restore
  std::vector<int> files;   // ChildPlan::files, renumbered, same order
};
std::string encode_report(const ParkedReport& r);
Result<ParkedReport> decode_report(const std::string& body, std::size_t nfiles);

// Runs in the new process (the last step of the chain, chain.hpp): never returns.
[[noreturn]] void child_main(int sock, ChildPlan& plan);

}  // namespace osmo::ckpt::restorer
