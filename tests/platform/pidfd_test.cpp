// SPDX-License-Identifier: GPL-2.0-or-later
// pidfds (platform/linux/pidfd) and pinning a process by pid and start time (process.hpp) on
// children we fork: signals to one process and to the group it leads, fds taken out of another
// process, the pid behind a pidfd, and processes that are gone or were never ours.
#include "platform/linux/pidfd.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "base/fd_io.hpp"
#include "platform/linux/proc_files.hpp"
#include "platform/linux/process.hpp"

#include "eventually.hpp"

namespace osmo::platform {
namespace {

// A child that leads its own process group, optionally with a grandchild in that group, and
// holds a pipe's write end at fd 100; both sleep until killed. `grandchild` is its pid.
struct Child {
  pid_t pid = -1;
  pid_t grandchild = -1;
  UniqueFd pipe_rd;

  explicit Child(bool with_grandchild = false) {
    int p[2], report[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(report, O_CLOEXEC), 0);
    pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      ::dup2(p[1], 100);
      pid_t g = 0;
      if (with_grandchild && (g = ::fork()) == 0) {
        for (;;) ::pause();
      }
      (void)write_full(report[1], &g, sizeof g);
      for (;;) ::pause();
    }
    ::close(p[1]);
    ::close(report[1]);
    pipe_rd.reset(p[0]);
    pid_t g = -1;
    EXPECT_EQ(read_full(report[0], &g, sizeof g).bytes, sizeof g);
    ::close(report[0]);
    grandchild = g;
  }
  ~Child() {
    if (grandchild > 0) ::kill(grandchild, SIGKILL);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  // Waits for the child's end; its wait status.
  int reap() {
    int st = 0;
    EXPECT_GT(::waitpid(std::exchange(pid, -1), &st, 0), 0);
    return st;
  }
};

using osmo::testing::eventually;

TEST(Pidfd, SignalThroughAPidfd) {
  Child c;
  UniqueFd fd = pidfd_open(c.pid);
  ASSERT_TRUE(fd.valid()) << std::strerror(errno);
  EXPECT_TRUE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC);
  auto pid = pid_of_pidfd(fd.get());
  ASSERT_TRUE(pid.ok()) << pid.error().str();
  EXPECT_EQ(*pid, c.pid);
  ASSERT_EQ(pidfd_signal(fd.get(), SIGTERM), 0);
  const int st = c.reap();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) << st;
  // The pidfd still names that process, which is gone: no other process can be hit through it.
  errno = 0;
  EXPECT_EQ(pidfd_signal(fd.get(), SIGTERM), -1);
  EXPECT_EQ(errno, ESRCH);
  auto gone = pid_of_pidfd(fd.get());
  EXPECT_FALSE(gone.ok());  // "Pid: -1"

  errno = 0;
  EXPECT_FALSE(pidfd_open(999999999).valid());
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(pid_of_pidfd(-1).ok());
}

TEST(Pidfd, SignalTheGroupTheProcessLeads) {
  Child c(/*with_grandchild=*/true);
  ASSERT_GT(c.grandchild, 0);
  UniqueFd fd = pidfd_open(c.pid);
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(pidfd_signal(fd.get(), SIGKILL, kPidfdSignalProcessGroup), 0) << std::strerror(errno);
  const int st = c.reap();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  // The grandchild was in the group: killed too (then reaped by whoever adopted it).
  EXPECT_TRUE(eventually([&] {
    auto s = read_pid_stat(c.grandchild);
    return !s.ok() || s->state == 'Z';
  }));
}

TEST(Pidfd, TakeAnFdOutOfAnotherProcess) {
  Child c;
  UniqueFd w = take_fd(c.pid, 100);
  ASSERT_TRUE(w.valid()) << std::strerror(errno);
  EXPECT_TRUE(::fcntl(w.get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(::write(w.get(), "t", 1), 1);  // the child's pipe: we read what we wrote into it
  char got = 0;
  ASSERT_EQ(::read(c.pipe_rd.get(), &got, 1), 1);
  EXPECT_EQ(got, 't');

  errno = 0;
  EXPECT_FALSE(take_fd(c.pid, 101).valid());  // no such fd there
  EXPECT_EQ(errno, EBADF);
  UniqueFd pidfd = pidfd_open(c.pid);
  ASSERT_TRUE(pidfd.valid());
  EXPECT_TRUE(pidfd_getfd(pidfd.get(), 100).valid());
  const pid_t was = c.pid;
  ::kill(c.pid, SIGKILL);
  c.reap();
  errno = 0;
  EXPECT_FALSE(take_fd(was, 100).valid());
  EXPECT_EQ(errno, ESRCH);
}

TEST(Pidfd, PinOnlyTheProcessWeMean) {
  Child c;
  const ProcessIdentity id{c.pid, process_start_ticks(c.pid)};
  ASSERT_NE(id.start_ticks, 0u);
  auto pinned = pin_process(id);
  ASSERT_TRUE(pinned.ok()) << pinned.error().str();
  EXPECT_EQ(*pid_of_pidfd(pinned->get()), c.pid);

  // Same pid, another start time: a recycled pid. Refused, and nothing is signalled.
  const ProcessIdentity other{c.pid, id.start_ticks + 1};
  auto wrong = pin_process(other);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ESRCH);
  EXPECT_EQ(wrong.error().message, fmt::format("pid {} is no longer the process we started", c.pid));
  Status s = signal_process(other, SIGKILL);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ESRCH);
  EXPECT_EQ(process_start_ticks(c.pid), id.start_ticks);  // still alive

  ASSERT_TRUE(signal_process(id, SIGTERM).ok());
  const int st = c.reap();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  auto gone = pin_process(id);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ESRCH);
  // The pidfd pinned earlier still refers to the dead process, never to a successor.
  errno = 0;
  EXPECT_EQ(pidfd_signal(pinned->get(), SIGKILL), -1);
  EXPECT_EQ(errno, ESRCH);
}

}  // namespace
}  // namespace osmo::platform
