// SPDX-License-Identifier: GPL-2.0-or-later
// A thread of its own that runs closures one at a time, for kernel state that belongs to the
// *thread* that created it rather than to the process:
//  - a ptrace tracer is a thread: only it may PTRACE_DETACH or set registers, and
//    PTRACE_O_EXITKILL kills the tracee when that thread exits;
//  - PR_SET_PDEATHSIG fires when the thread that created the child exits (prctl(2)).
// HeldProcess and PendingRestore (ckpt.hpp) keep one, so their owner may call resume()/commit()
// from any thread, and what they hold lives exactly as long as they do, not as long as the
// thread that happened to create them. Generic Linux plumbing, kept in ckpt until
// platform/linux takes such helpers.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "base/result.hpp"

namespace osmo::ckpt {

class OwnerThread {
 public:
  // Fails (an error, never an exception) when no thread can be created (EAGAIN under a pids
  // limit or RLIMIT_NPROC).
  static Result<std::unique_ptr<OwnerThread>> start();
  ~OwnerThread();  // the thread ends after the closure it runs, if any
  OwnerThread(const OwnerThread&) = delete;
  OwnerThread& operator=(const OwnerThread&) = delete;

  // Runs f on the thread and waits for its result. Never call it from f itself.
  template <typename F>
  auto run(F f) -> decltype(f()) {
    std::optional<decltype(f())> out;
    execute([&] { out.emplace(f()); });
    return std::move(*out);
  }

 private:
  OwnerThread() = default;
  void execute(std::function<void()> task);
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> task_;  // set: to run; cleared by the thread when done
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace osmo::ckpt
