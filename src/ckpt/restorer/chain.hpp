// SPDX-License-Identifier: GPL-2.0-or-later
// The chain init builds down to the new process: the session and process-group placeholders
// (session.cpp decides which are needed), each created with its leader's pid (clone3 set_tid),
// then the new process itself with the image's pid. Placeholders create the next step with
// CLONE_PARENT, so every process of the chain is init's child:
//
//   init --> [session placeholder: setsid] --> [group placeholder: setpgid(0,0)] --> new process
//
// A placeholder exits as soon as its child exists; init reaps it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "base/result.hpp"
#include "ckpt/restorer/child.hpp"

namespace osmo::ckpt::restorer {

struct ChainStep {
  pid_t tid = 0;
  enum class Role { kSession, kGroup, kTarget } role = Role::kTarget;
};

// The steps for a plan, in creation order; the last is the new process.
std::vector<ChainStep> chain_of(const ChildPlan& plan);

// Creates steps[i] with its pid; from init (from_init) or from the placeholder before it. The
// new process's pidfd goes to the caller (kPidfd). Returns in the creator only.
Status chain_spawn(int sock, ChildPlan& plan, const std::vector<ChainStep>& steps, std::size_t i, bool from_init);

}  // namespace osmo::ckpt::restorer
