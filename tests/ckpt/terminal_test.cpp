// SPDX-License-Identifier: GPL-2.0-or-later
// A session with a controlling pseudo-terminal through checkpoint and restore (ckpt terminal.cpp,
// docs/engine.md "Controlling terminal"): a session leader on a pty with its own settings (no
// echo, Ctrl-G as the interrupt character, 33x111) and a child in another process group that is
// the terminal's foreground group. Restored with a new pty (FdResolver::resolve_terminal, as a
// migration's target does), the new pair has the same settings, window size and foreground group,
// seen from its master; the interrupt character typed into the new master kills the foreground
// child with SIGINT; and the leader itself finds its terminal (/dev/tty), the foreground group,
// the settings and the window as they were.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "ckpt/ckpt.hpp"
#include "platform/linux/proc_files.hpp"
#include "test_child.hpp"

namespace osmo::ckpt::testing {
namespace {

constexpr unsigned char kIntrChar = 0x07;  // Ctrl-G
constexpr unsigned short kRows = 33, kCols = 111;

volatile sig_atomic_t g_check = 0;
void on_check(int) {
  g_check = 1;
}

// The session leader: checks its terminal when told (SIGUSR1) and exits with a bit per failure.
[[noreturn]] void leader_main(const char* slave_path) {
  syscall(SYS_close_range, 3u, ~0u, 0u);
  if (setsid() < 0) _exit(100);
  int t = open(slave_path, O_RDWR);  // no O_NOCTTY: a session leader without one acquires it
  if (t < 0) _exit(101);
  dup2(t, 0);
  dup2(t, 1);
  dup2(t, 2);
  if (t > 2) close(t);
  termios tio{};
  tcgetattr(0, &tio);
  tio.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tio.c_cc[VINTR] = kIntrChar;
  tcsetattr(0, TCSANOW, &tio);
  winsize ws{};
  ws.ws_row = kRows;
  ws.ws_col = kCols;
  ioctl(0, TIOCSWINSZ, &ws);
  struct sigaction sa {};
  sa.sa_handler = on_check;
  sigaction(SIGUSR1, &sa, nullptr);
  pid_t fg = fork();
  if (fg == 0) {
    setpgid(0, 0);
    for (;;) pause();  // SIGINT (default action) ends it
  }
  setpgid(fg, fg);
  signal(SIGTTOU, SIG_IGN);
  if (tcsetpgrp(0, fg) != 0) _exit(102);
  signal(SIGTTOU, SIG_DFL);
  (void)!write(1, "R", 1);
  while (!g_check) pause();
  int bad = 0;
  int dev_tty = open("/dev/tty", O_RDWR | O_NOCTTY);
  if (dev_tty < 0) bad |= 1;
  if (tcgetpgrp(0) != fg) bad |= 2;
  termios now{};
  if (tcgetattr(0, &now) != 0 || (now.c_lflag & ECHO) != 0 || now.c_cc[VINTR] != kIntrChar)
    bad |= 4;
  winsize w{};
  if (ioctl(0, TIOCGWINSZ, &w) != 0 || w.ws_row != kRows || w.ws_col != kCols) bad |= 8;
  if (getsid(0) != getpid()) bad |= 16;
  int st = 0;
  if (waitpid(fg, &st, WNOHANG) != fg || !WIFSIGNALED(st) || WTERMSIG(st) != SIGINT) bad |= 32;
  _exit(bad);
}

// A fresh pty for the restored session; the master stays ours.
class NewPty final : public FdResolver {
 public:
  Result<int> resolve(const FdImage& recorded) override {
    return make_error("fd {} ({}) was not expected to need a stand-in", recorded.fd, recorded.path);
  }
  Result<int> resolve_terminal(const TerminalImage& t) override {
    index_at_dump = t.index;
    master.reset(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master || unlockpt(master.get()) != 0) return errno_error("new pty");
    slave.reset(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave) return errno_error("its slave");
    return slave.get();
  }
  UniqueFd master, slave;
  int index_at_dump = -1;
};

// Reads from a pty master until `want` came (or 5 s passed).
bool read_until(int master, char want) {
  for (int i = 0; i < 500; i++) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 10) == 1) {
      char c = 0;
      if (read(master, &c, 1) == 1 && c == want) return true;
    }
  }
  return false;
}

TEST(Terminal, ControllingPtyWithForegroundGroupTravels) {
  REQUIRE_ROOT();
  UniqueFd old_master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(old_master.valid());
  ASSERT_EQ(grantpt(old_master.get()), 0);
  ASSERT_EQ(unlockpt(old_master.get()), 0);
  const std::string slave_path = ptsname(old_master.get());
  pid_t leader = fork();
  if (leader == 0) leader_main(slave_path.c_str());
  KillOnExit guard(leader);
  ASSERT_TRUE(read_until(old_master.get(), 'R')) << "the session did not start";
  std::vector<pid_t> kids = platform::process_children(leader);
  ASSERT_EQ(kids.size(), 1u);
  pid_t old_fg = 0;
  ASSERT_EQ(ioctl(old_master.get(), TIOCGPGRP, &old_fg), 0);
  ASSERT_EQ(old_fg, kids[0]) << "the child is the foreground group before the dump";

  UniqueFd img(memfd_create("image", MFD_CLOEXEC));
  CheckpointOptions o;
  o.scope = TreeScope::kTree;
  o.after = AfterDump::kKill;
  Status d = checkpoint(leader, img.get(), o);
  ASSERT_TRUE(d.ok()) << d.error().str();
  lseek(img.get(), 0, SEEK_SET);

  NewPty pty;
  RestoreOptions ro;
  ro.resolver = &pty;
  auto pending = restore_held(img.get(), ro);
  ASSERT_TRUE(pending.ok()) << pending.error().str();
  RestoredProcess p = pending->process();
  KillOnExit init_guard(p.init_pid);
  EXPECT_EQ(pty.index_at_dump, std::stoi(slave_path.substr(std::string("/dev/pts/").size())));
  Status c;
  std::thread([&] { c = pending->commit(); }).join();
  ASSERT_TRUE(c.ok()) << c.error().str();
  UniqueFd pidfd(pending->process().pidfd);
  pty.slave.reset();  // the restored processes hold their own

  // Seen from the new master: the same settings, window and foreground group (its pid here).
  termios tio{};
  ASSERT_EQ(tcgetattr(pty.master.get(), &tio), 0);
  EXPECT_EQ(tio.c_lflag & ECHO, 0u) << "echo was off";
  EXPECT_EQ(tio.c_cc[VINTR], kIntrChar);
  winsize ws{};
  ASSERT_EQ(ioctl(pty.master.get(), TIOCGWINSZ, &ws), 0);
  EXPECT_EQ(ws.ws_row, kRows);
  EXPECT_EQ(ws.ws_col, kCols);
  std::vector<pid_t> new_kids = platform::process_children(p.pid);
  ASSERT_EQ(new_kids.size(), 1u);
  pid_t fg = 0;
  ASSERT_EQ(ioctl(pty.master.get(), TIOCGPGRP, &fg), 0);
  EXPECT_EQ(fg, new_kids[0]) << "the restored child is the new terminal's foreground group";
  pid_t sid = 0;
  ASSERT_EQ(ioctl(pty.master.get(), TIOCGSID, &sid), 0);
  EXPECT_EQ(sid, p.pid) << "the restored leader's session has the new terminal";

  // The interrupt character reaches the foreground group through the new line discipline.
  const char intr = static_cast<char>(kIntrChar);
  ASSERT_EQ(write(pty.master.get(), &intr, 1), 1);
  auto state = [](pid_t pid) {
    auto st = platform::read_pid_status(pid);
    return st.ok() ? st->state : '?';
  };
  for (int i = 0; i < 500 && state(new_kids[0]) != 'Z'; i++) usleep(10'000);
  EXPECT_EQ(state(new_kids[0]), 'Z')
      << "the foreground child did not die of the interrupt character";
  ASSERT_EQ(kill(p.pid, SIGUSR1), 0);
  EXPECT_EQ(wait_status_bounded(p.init_pid, 20), 0)
      << "the leader found its terminal as it was (bits: 1 /dev/tty, "
         "2 foreground, 4 termios, 8 window, 16 session, 32 SIGINT)";
}

}  // namespace
}  // namespace osmo::ckpt::testing
