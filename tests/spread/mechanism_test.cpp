// SPDX-License-Identifier: GPL-2.0-or-later
// The kernel mechanism of spreading, on real processes (root): the exec filter notifies, the
// cookie bypasses it, a "stay" answer runs the program unchanged, and a redirect makes the very
// same process (same pid, same fds) exec another program with the original argv appended.
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "base/fd_io.hpp"
#include "spread/exec_filter.hpp"
#include "spread/exec_request.hpp"
#include "spread/redirect.hpp"

extern char** environ;

namespace osmo::spread {
namespace {

constexpr std::uint64_t kCookie = 0x1234567890abcdefULL;

struct Child {
  pid_t pid = -1;
  int listener = -1;
  int out = -1;  // the child's stdout
};

// Forks a child that installs the filter, sends the listener's number up a pipe (the parent takes
// the fd with pidfd_getfd), then runs `sh -c script` through the filter (not bypassed).
Child start(const char* script) {
  int out[2], sync[2];
  EXPECT_EQ(::pipe(out), 0);
  EXPECT_EQ(::pipe(sync), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    auto l = install_exec_filter(kCookie);
    int fd = l.ok() ? l->release() : -1;
    (void)!::write(sync[1], &fd, sizeof fd);
    ::usleep(100'000);  // let the parent take the listener before the first exec
    const char* argv[] = {"/bin/sh", "-c", script, nullptr};
    ::execv("/bin/sh", const_cast<char**>(argv));
    ::_exit(99);
  }
  ::close(out[1]);
  int fd = -1;
  EXPECT_EQ(::read(sync[0], &fd, sizeof fd), static_cast<ssize_t>(sizeof fd));
  EXPECT_GE(fd, 0);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  const int listener = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  EXPECT_GE(listener, 0) << std::strerror(errno);
  ::close(pidfd);
  return Child{pid, listener, out[0]};
}

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
  return s;
}

bool recv_notif(int listener, seccomp_notif* n) {
  std::memset(n, 0, sizeof *n);
  return ::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, n) == 0;
}

void answer_continue(int listener, const seccomp_notif& n) {
  seccomp_notif_resp r{};
  r.id = n.id;
  r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  ASSERT_EQ(::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r), 0) << std::strerror(errno);
}

TEST(SpreadMechanism, StayRunsTheProgramUnchanged) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Child c = start("/bin/echo one two");
  seccomp_notif n;
  ASSERT_TRUE(recv_notif(c.listener, &n));  // sh's exec of /bin/sh itself
  auto path = read_remote_string(static_cast<pid_t>(n.pid), n.data.args[0], kMaxPathBytes);
  ASSERT_TRUE(path.ok()) << path.error().str();
  EXPECT_EQ(*path, "/bin/sh");
  answer_continue(c.listener, n);
  ASSERT_TRUE(recv_notif(c.listener, &n));  // sh execs echo (dash: the last command is exec'd)
  path = read_remote_string(static_cast<pid_t>(n.pid), n.data.args[0], kMaxPathBytes);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, "/bin/echo");
  auto argv = read_remote_argv(static_cast<pid_t>(n.pid), n.data.args[1]);
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(*argv, (std::vector<std::string>{"/bin/echo", "one", "two"}));
  answer_continue(c.listener, n);
  EXPECT_EQ(read_all(c.out), "one two\n");
  int st = 0;
  ASSERT_EQ(::waitpid(c.pid, &st, 0), c.pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(SpreadMechanism, RedirectKeepsThePidAndAppendsTheOriginalArgv) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  // The child prints its pid, then execs echo (exec replaces sh: dash runs the last command so).
  Child c = start("echo $$; exec /bin/echo one two");
  seccomp_notif n;
  ASSERT_TRUE(recv_notif(c.listener, &n));
  answer_continue(c.listener, n);  // /bin/sh
  ASSERT_TRUE(recv_notif(c.listener, &n));
  const pid_t tid = static_cast<pid_t>(n.pid);
  auto ptrs = read_remote_pointers(tid, n.data.args[1], kMaxArgs);
  ASSERT_TRUE(ptrs.ok());
  ASSERT_EQ(ptrs->size(), 3u);
  // Instead of `/bin/echo one two`: `/bin/sh -c 'echo "$$ $*"' deputy /bin/echo one two`.
  const RedirectResult r = redirect_exec(tid, {"/bin/sh", "-c", "echo \"$$ $*\"", "deputy"}, *ptrs, kCookie);
  ASSERT_EQ(r.outcome, RedirectOutcome::kRedirected) << r.why;
  // No further notification: the cookie let the redirected exec through.
  const std::string out = read_all(c.out);
  const auto nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos) << out;
  const std::string pid_before = out.substr(0, nl);
  EXPECT_EQ(out.substr(nl + 1), pid_before + " /bin/echo one two\n");
  int st = 0;
  ASSERT_EQ(::waitpid(c.pid, &st, 0), c.pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(SpreadMechanism, CookieBypassesTheFilter) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    auto l = install_exec_filter(kCookie);
    if (!l.ok()) ::_exit(98);
    const char* argv[] = {"echo", "bypassed", nullptr};
    execvp_bypass("echo", const_cast<char**>(argv), environ, kCookie);
    ::_exit(99);
  }
  ::close(out[1]);
  // Nobody reads the listener (it stays in the child, closed at exec... the filter remains): if
  // the bypass failed, the exec would block or fail with ENOSYS.
  EXPECT_EQ(read_all(out[0]), "bypassed\n");
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

}  // namespace
}  // namespace osmo::spread
