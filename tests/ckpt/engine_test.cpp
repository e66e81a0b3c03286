// SPDX-License-Identifier: GPL-2.0-or-later
// Engine tests on real processes: the child of test_child.hpp (16 MiB of heap, FPU arithmetic,
// restartable sleeps, a SIGUSR1 handler) is checkpointed and restored, and must finish with the
// exact result. Refusals must leave the process running and untraced; every fault point must
// clean up. Needs root (ptrace of others, namespaces): skips outside CI, fails under CI=true.
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/scope_guard.hpp"
#include "base/unique_fd.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/proc.hpp"
#include "test_child.hpp"

namespace osmo::ckpt {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the tests' own helpers

TEST(Engine, DumpKillRestoreFinishesTheComputation) {
  REQUIRE_ROOT();
  Child c = spawn();
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_TRUE(img.ok()) << img.error().str();
  EXPECT_NE(kill(c.pid, 0), 0) << "--kill must leave no original";
  EXPECT_EQ(restore_and_finish(img->get(), c.pid), 0);
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

TEST(Engine, LeaveRunningAndRestoreACopyCompressed) {
  REQUIRE_ROOT();
  Child c = spawn();
  auto img = dump(c.pid, AfterDump::kResume, true);
  ASSERT_TRUE(img.ok()) << img.error().str();
  expect_untouched(c.pid);
  // The copy runs beside the original (same pid, but in its own pid namespace); neither has
  // written its result yet, so the result file is unchanged and the restore accepts it.
  int copy_status = restore_and_finish(img->get(), c.pid);
  kill(c.pid, SIGUSR1);
  EXPECT_EQ(wait_status(c.pid), 0) << "the original must finish correctly after the dump";
  EXPECT_EQ(copy_status, 0);
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

// A process with 64 anonymous pages: 0-9 and 20-29 hold data, 10-19 were written with zeros
// (present, but not carried in the image), 30-63 were never touched. It reports the address,
// then waits for SIGUSR1 and exits 0 if the data is intact.
struct PagesChild {
  pid_t pid = -1;
  std::uint64_t addr = 0;
};

PagesChild spawn_pages_child() {
  int p[2];
  EXPECT_EQ(pipe(p), 0);
  PagesChild c;
  c.pid = fork();
  if (c.pid == 0) {
    close(p[0]);
    signal(SIGUSR1, on_usr1);
    sigset_t usr1, waitmask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &waitmask);
    sigdelset(&waitmask, SIGUSR1);
    auto* m = static_cast<std::uint8_t*>(
        mmap(nullptr, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    for (int i = 0; i < 30; i++) std::memset(m + i * 4096, (i >= 10 && i < 20) ? 0 : i + 1, 4096);
    int devnull = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; fd++) dup2(devnull, fd);
    for (int fd = 3; fd < 1024; fd++)
      if (fd != p[1]) close(fd);
    auto a = reinterpret_cast<std::uint64_t>(m);
    (void)!write(p[1], &a, 8);
    close(p[1]);  // the parent dumps once it sees EOF: no fd of ours is left but 0-2
    while (!g_usr1) sigsuspend(&waitmask);
    for (int i = 0; i < 30; i++)
      for (int k = 0; k < 4096; k++)
        if (m[i * 4096 + k] != ((i >= 10 && i < 20) ? 0 : i + 1)) _exit(1);
    _exit(0);
  }
  close(p[1]);
  EXPECT_EQ(read(p[0], &c.addr, 8), 8);
  char eof;
  EXPECT_EQ(read(p[0], &eof, 1), 0);
  close(p[0]);
  return c;
}

// Which of the 64 pages at addr are present in pid.
std::vector<bool> present_pages(pid_t pid, std::uint64_t addr) {
  std::vector<std::uint64_t> e(64);
  UniqueFd fd(open(fmt::format("/proc/{}/pagemap", pid).c_str(), O_RDONLY));
  EXPECT_EQ(pread(fd.get(), e.data(), 64 * 8, static_cast<off_t>(addr / 4096 * 8)), 64 * 8);
  std::vector<bool> out;
  for (std::uint64_t v : e) out.push_back((v >> 63) != 0);
  return out;
}

// Data pages come back with their content and zero pages come back present (as the original
// had them), untouched pages stay absent: through the userfaultfd path and the fallback.
TEST(Engine, PageResidencyAndContentOnBothFillPaths) {
  REQUIRE_ROOT();
  for (bool uffd : {true, false}) {
    SCOPED_TRACE(uffd ? "userfaultfd" : "process_vm_writev");
    PagesChild c = spawn_pages_child();
    ASSERT_GT(c.pid, 0);
    std::vector<bool> before = present_pages(c.pid, c.addr);
    auto img = dump(c.pid, AfterDump::kKill);
    ASSERT_TRUE(img.ok()) << img.error().str();
    waitpid(c.pid, nullptr, 0);
    RestoreOptions o;
    o.fill_with_userfaultfd = uffd;
    auto r = restore(img->get(), o);
    ASSERT_TRUE(r.ok()) << r.error().str();
    std::vector<bool> after = present_pages(r->pid, c.addr);
    for (int i = 0; i < 64; i++) {
      EXPECT_EQ(before[i], i < 30) << "page " << i << " before the dump";
      EXPECT_EQ(after[i], before[i]) << "page " << i << " after the restore";
    }
    EXPECT_EQ(kill(r->pid, SIGUSR1), 0);
    close(r->pidfd);
    EXPECT_EQ(wait_status(r->init_pid), 0) << "the restored pages differ from the original's";
  }
}

TEST(Engine, RefusesThreadsBeforeTouching) {
  REQUIRE_ROOT();
  Child c = spawn(1);
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().message,
            fmt::format("cannot checkpoint pid {}: it has 2 threads (only single-threaded processes are supported)", c.pid));
  expect_untouched(c.pid);
  kill(c.pid, SIGUSR1);
  EXPECT_EQ(wait_status(c.pid), 0);
}

TEST(Engine, RefusesEventfdBeforeTouching) {
  REQUIRE_ROOT();
  Child c = spawn(2);
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_FALSE(img.ok());
  EXPECT_NE(img.error().message.find("anon_inode:[eventfd]"), std::string::npos) << img.error().message;
  expect_untouched(c.pid);
  kill(c.pid, SIGUSR1);
  EXPECT_EQ(wait_status(c.pid), 0);
}

TEST(Engine, EveryDumpFaultLeavesTheOriginalRunning) {
  REQUIRE_ROOT();
  Child c = spawn();
  for (auto& [name, what] : fault_points()) {
    if (name.rfind("dump.", 0) != 0) continue;
    setenv("OSMO_FAULT", name.c_str(), 1);
    auto img = dump(c.pid, AfterDump::kKill);
    unsetenv("OSMO_FAULT");
    ASSERT_FALSE(img.ok()) << name;
    EXPECT_NE(img.error().message.find("fault injected at " + name), std::string::npos) << img.error().message;
    expect_untouched(c.pid);
  }
  kill(c.pid, SIGUSR1);
  EXPECT_EQ(wait_status(c.pid), 0) << "the original must compute the right result after all aborted dumps";
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

TEST(Engine, EveryRestoreFaultLeavesNothingBehind) {
  REQUIRE_ROOT();
  Child c = spawn();
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_TRUE(img.ok()) << img.error().str();
  for (auto& [name, what] : fault_points()) {
    if (name.rfind("restore.", 0) != 0) continue;
    setenv("OSMO_FAULT", name.c_str(), 1);
    lseek(img->get(), 0, SEEK_SET);
    auto r = restore(img->get(), RestoreOptions{});
    unsetenv("OSMO_FAULT");
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_NE(r.error().message.find("fault injected at " + name), std::string::npos) << r.error().message;
    int st;
    errno = 0;
    EXPECT_EQ(waitpid(-1, &st, WNOHANG), -1) << name << ": a child (init) was left behind";
    EXPECT_EQ(errno, ECHILD);
  }
  EXPECT_EQ(restore_and_finish(img->get(), c.pid), 0);
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

TEST(Engine, ChangedFileIsRefusedAtRestore) {
  REQUIRE_ROOT();
  Child c = spawn();
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_TRUE(img.ok()) << img.error().str();
  {
    UniqueFd fd(open(c.input_path.c_str(), O_WRONLY | O_APPEND));
    ASSERT_EQ(write(fd.get(), "changed!", 8), 8);
  }
  auto r = restore(img->get(), RestoreOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("file of fd 5 " + c.input_path + " changed since the checkpoint"),
            std::string::npos)
      << r.error().message;
}

// A child hit by a 100 us periodic ITIMER_REAL, sleeping in pause(): timer signals arrive while
// it is being seized and while syscalls are injected. After SIGUSR1 it exits 0 once 200 more
// alarms came, so a lost timer shows as a child that never exits.
volatile sig_atomic_t g_alarms = 0, g_go = 0;
void on_alarm(int) { g_alarms = g_alarms + 1; }
void on_go(int) { g_go = 1; }

pid_t spawn_timer_storm() {
  int ready[2];
  EXPECT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(ready[1], 3);
    syscall(SYS_close_range, 4u, ~0u, 0u);
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, nullptr);
    sa.sa_handler = on_go;
    sigaction(SIGUSR1, &sa, nullptr);
    itimerval it{{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, nullptr);
    char one = 1;
    (void)!write(3, &one, 1);
    close(3);
    while (!g_go) pause();
    int at_go = g_alarms;
    while (g_alarms < at_go + 200) pause();
    _exit(0);
  }
  close(ready[1]);
  char b;
  EXPECT_EQ(read(ready[0], &b, 1), 1);
  close(ready[0]);
  return pid;
}

// Sixty dumps of a process under a timer storm must all work (a stale PTRACE_INTERRUPT trap
// used to be taken for an injected syscall's result: "stopped by signal 5 instead of a syscall
// stop", about one dump in ten here), the original must carry on, and a restored copy's timer
// must keep firing (it is re-armed last, with every signal still blocked).
TEST(Engine, TimerStormDuringDumpAndRestore) {
  REQUIRE_ROOT();
  pid_t pid = spawn_timer_storm();
  ScopeGuard kill_child([&] {  // on a failed assertion: no child left running
    if (kill(pid, SIGKILL) == 0) (void)wait_status(pid);
  });
  for (int i = 0; i < 60; i++) {
    auto img = dump(pid, AfterDump::kResume);
    ASSERT_TRUE(img.ok()) << "dump " << i << ": " << img.error().str();
    expect_untouched(pid);
  }
  auto img = dump(pid, AfterDump::kKill);
  ASSERT_TRUE(img.ok()) << img.error().str();
  EXPECT_NE(kill(pid, 0), 0) << "--kill must leave no original";  // reaped by the dump's tracer
  kill_child.dismiss();
  auto r = restore(img->get(), RestoreOptions{});
  ASSERT_TRUE(r.ok()) << r.error().str();
  close(r->pidfd);
  EXPECT_EQ(kill(r->pid, SIGUSR1), 0);
  EXPECT_EQ(wait_status_bounded(r->init_pid, 20), 0) << "the restored process's itimer stopped firing";
}

// With one usable CPU (a pinned or cpuset-limited restorer) the restore runs one filler, the
// calling thread, and no helper: the same image comes back just as right.
TEST(Engine, OneUsableCpuRestoresWithOneFiller) {
  REQUIRE_ROOT();
  cpu_set_t all, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  int first = 0;
  while (first < CPU_SETSIZE && !CPU_ISSET(first, &all)) first++;
  ASSERT_LT(first, CPU_SETSIZE);
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  ScopeGuard unpin([&] { sched_setaffinity(0, sizeof all, &all); });
  Child c = spawn();
  for (bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "compressed" : "plain");
    auto img = dump(c.pid, compress ? AfterDump::kKill : AfterDump::kResume, compress);
    ASSERT_TRUE(img.ok()) << img.error().str();
    // First a copy beside the original (which keeps running), then the original itself; each
    // must finish the computation exactly.
    EXPECT_EQ(restore_and_finish(img->get(), c.pid), 0);
    EXPECT_EQ(read_result(c.result_path), expected_result());
  }
}

// A page section whose data was damaged is refused at restore, whichever filler thread checks
// it, from a mapped image and from a pipe, and no half-restored process is left; the undamaged
// image still restores.
TEST(Engine, DamagedPageDataIsRefusedAtRestore) {
  REQUIRE_ROOT();
  Child c = spawn();
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_TRUE(img.ok()) << img.error().str();
  std::string bytes(static_cast<std::size_t>(lseek(img->get(), 0, SEEK_END)), '\0');
  ASSERT_EQ(pread(img->get(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  ASSERT_GT(bytes.size(), kHeapBytes);
  // 2 MiB before the end: inside the page data of a late PAGES section (the heap is most of the
  // image; what follows it is a few library and stack pages), not the first section a restore
  // takes, so a filler thread, not the reader, finds the damage.
  std::string damaged = bytes;
  damaged[damaged.size() - (2u << 20)] ^= 0x40;
  auto expect_refused = [&](Result<RestoredProcess> r, const char* how) {
    ASSERT_FALSE(r.ok()) << how;
    // The payload check of a page section (not the header check the reader does).
    EXPECT_NE(r.error().message.find("(pages)"), std::string::npos) << how << ": " << r.error().message;
    EXPECT_NE(r.error().message.find("checksum mismatch (stored"), std::string::npos) << how << ": " << r.error().message;
    int st;
    errno = 0;
    EXPECT_EQ(waitpid(-1, &st, WNOHANG), -1) << how << ": a child (init) was left behind";
    EXPECT_EQ(errno, ECHILD);
  };
  {
    UniqueFd m(memfd_create("damaged", MFD_CLOEXEC));
    ASSERT_EQ(write(m.get(), damaged.data(), damaged.size()), static_cast<ssize_t>(damaged.size()));
    lseek(m.get(), 0, SEEK_SET);
    expect_refused(restore(m.get(), RestoreOptions{}), "mapped image");
  }
  {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    UniqueFd rd(p[0]);
    // The restore stops reading at the damage: the rest of the write fails with EPIPE.
    auto old_sigpipe = signal(SIGPIPE, SIG_IGN);
    ScopeGuard restore_sigpipe([&] { signal(SIGPIPE, old_sigpipe); });
    std::thread writer([&, w = UniqueFd(p[1])] {
      std::size_t off = 0;
      while (off < damaged.size()) {
        ssize_t n = write(w.get(), damaged.data() + off, damaged.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
      }
    });
    auto r = restore(rd.get(), RestoreOptions{});
    rd.reset();
    writer.join();
    expect_refused(std::move(r), "pipe");
  }
  EXPECT_EQ(restore_and_finish(img->get(), c.pid), 0);
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

// Capabilities can only be given up: a restorer that lacks one the image holds refuses before
// any process exists (the restored process would otherwise silently lose it). A forked helper
// drops CAP_MKNOD from its permitted and effective sets and restores a full-capability image.
TEST(Engine, RefusesAnImageWithCapabilitiesTheRestorerLacks) {
  REQUIRE_ROOT();
  Child c = spawn();
  auto img = dump(c.pid, AfterDump::kResume);
  ASSERT_TRUE(img.ok()) << img.error().str();
  kill(c.pid, SIGUSR1);
  EXPECT_EQ(wait_status(c.pid), 0);
  auto st = read_status(getpid());
  ASSERT_TRUE(st.ok()) << st.error().str();
  constexpr int kCapMknod = 27;
  if ((st->cap_prm & (1ull << kCapMknod)) == 0) GTEST_SKIP() << "this test runs without CAP_MKNOD";
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t helper = fork();
  if (helper == 0) {
    close(pipefd[0]);
    struct {
      std::uint32_t version;
      int pid;
    } hdr{0x20080522, 0};
    struct {
      std::uint32_t eff, prm, inh;
    } data[2] = {{static_cast<std::uint32_t>(st->cap_eff), static_cast<std::uint32_t>(st->cap_prm),
                  static_cast<std::uint32_t>(st->cap_inh)},
                 {static_cast<std::uint32_t>(st->cap_eff >> 32), static_cast<std::uint32_t>(st->cap_prm >> 32),
                  static_cast<std::uint32_t>(st->cap_inh >> 32)}};
    data[0].eff &= ~(1u << kCapMknod);
    data[0].prm &= ~(1u << kCapMknod);
    if (syscall(SYS_capset, &hdr, data) != 0) _exit(2);
    lseek(img->get(), 0, SEEK_SET);
    auto r = restore(img->get(), RestoreOptions{});
    std::string msg = r.ok() ? std::string("restored") : r.error().message;
    if (r.ok()) kill(r->init_pid, SIGKILL);  // the namespace and the copy die with its init
    (void)!write(pipefd[1], msg.data(), msg.size());
    _exit(r.ok() ? 1 : 0);
  }
  close(pipefd[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<std::size_t>(n));
  close(pipefd[0]);
  EXPECT_EQ(wait_status(helper), 0) << msg;
  EXPECT_NE(msg.find(fmt::format("include {:#x}, which this restorer lacks", 1ull << kCapMknod)), std::string::npos)
      << msg;
}

}  // namespace
}  // namespace osmo::ckpt
