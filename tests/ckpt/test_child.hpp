// SPDX-License-Identifier: GPL-2.0-or-later
// The process the engine tests checkpoint (engine_test.cpp, transaction_test.cpp): a forked
// child computes something over 16 MiB of heap with FPU arithmetic, sleeping in a restartable
// syscall between steps, then waits for a SIGUSR1 handled by its own handler and writes its
// result to a file; a restored copy must write exactly the result an undisturbed run computes.
// And the helpers around it (dump to a memfd, restore and finish, wait, "untouched").
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "ckpt/ckpt.hpp"

namespace osmo::ckpt::testing {

// Engine tests need root (ptrace of others, namespaces): they skip outside CI and fail under
// CI=true, where a skipped root test would hide a regression.
#define REQUIRE_ROOT()                                                                   \
  do {                                                                                   \
    if (geteuid() != 0) {                                                                \
      const char* ci = std::getenv("CI");                                                \
      if (ci != nullptr && std::string(ci) == "true") FAIL() << "needs root, and CI must run it"; \
      GTEST_SKIP() << "needs root (ptrace, namespaces)";                                 \
    }                                                                                    \
  } while (0)

inline constexpr std::size_t kHeapBytes = 16u << 20;

// What an undisturbed run of the child computes.
std::uint64_t expected_result();

// A SIGUSR1 handler setting a flag, for children that wait for it.
extern volatile sig_atomic_t g_usr1;
void on_usr1(int);

// Kills a process the test started (and reaps it if it is our child) when the test ends,
// however it ends: a failed assertion must not leave processes behind. Through a pidfd opened
// while the process surely existed, so never another process that got its pid since. For a
// restore, guard its init: the namespace dies with it.
class KillOnExit {
 public:
  KillOnExit() = default;
  explicit KillOnExit(pid_t pid);
  KillOnExit(KillOnExit&&) noexcept = default;
  KillOnExit& operator=(KillOnExit&&) noexcept = default;  // onto an empty one
  ~KillOnExit();

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;
};

// A spawned child and its two files, which go with it however the test ends.
struct Child {
  pid_t pid = -1;
  std::string result_path;
  std::string input_path;  // held open read-only at fd 5: must be unchanged at restore
  Child() = default;
  Child(Child&& o) noexcept
      : pid(o.pid),
        result_path(std::exchange(o.result_path, {})),
        input_path(std::exchange(o.input_path, {})),
        guard(std::move(o.guard)) {}
  Child& operator=(Child&&) = delete;
  ~Child();
  KillOnExit guard;  // last: the process goes before its files
};

// mode 0: plain; 1: with a second thread; 2: with an eventfd open.
Child spawn(int mode = 0);
std::uint64_t read_result(const std::string& path);
// Waits for our child; its exit code, or 128+N when killed by signal N.
int wait_status(pid_t pid);
// Waits at most `seconds` for our child; kills it (and returns -1) if it does not end.
int wait_status_bounded(pid_t pid, int seconds);
// Running (not stopped) and not traced.
void expect_untouched(pid_t pid);
// checkpoint() into a memfd, rewound.
Result<UniqueFd> dump(pid_t pid, AfterDump after, bool compress = false);
// Restores the image, lets the copy finish (SIGUSR1) and returns init's exit status.
int restore_and_finish(int image_fd, std::int32_t expect_pid);

}  // namespace osmo::ckpt::testing
