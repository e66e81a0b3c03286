// SPDX-License-Identifier: GPL-2.0-or-later
// The engine tests' child process and helpers (test_child.hpp).
#include "test_child.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include <cstring>

#include "ckpt/proc.hpp"

namespace osmo::ckpt::testing {


namespace {

constexpr int kSteps = 400;

std::uint64_t step(std::uint64_t acc, std::uint64_t* heap, int i, double* f) {
  std::size_t n = kHeapBytes / 8;
  for (std::size_t k = static_cast<std::size_t>(i) * 997 % n, j = 0; j < 4096; j++, k = (k + 4099) % n) {
    acc = (acc ^ heap[k]) * 0x100000001b3ull;
    heap[k] = acc;
  }
  *f = *f * 1.0000001 + i;
  std::uint64_t bits;
  std::memcpy(&bits, f, 8);
  return acc ^ bits;
}

std::uint64_t* fresh_heap() {
  auto* heap = static_cast<std::uint64_t*>(std::malloc(kHeapBytes));
  for (std::size_t k = 0; k < kHeapBytes / 8; k++) heap[k] = k * 0x9e3779b97f4a7c15ull;
  return heap;
}

}  // namespace

std::uint64_t expected_result() {
  std::uint64_t* heap = fresh_heap();
  std::uint64_t acc = 1;
  double f = 1.0;
  for (int i = 0; i < kSteps; i++) acc = step(acc, heap, i, &f);
  std::free(heap);
  return acc;
}

volatile sig_atomic_t g_usr1 = 0;
void on_usr1(int) { g_usr1 = 1; }

KillOnExit::KillOnExit(pid_t pid) : pid_(pid), pidfd_(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))) {}

KillOnExit::~KillOnExit() {
  if (!pidfd_) return;
  // Fails with ESRCH once the process was reaped (by the test, or by a tracer's wait): done.
  if (syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0) != 0) return;
  // Not reaped yet, so the pid is still that process's: reap it if it is our child.
  int st;
  while (waitpid(pid_, &st, __WALL) < 0 && errno == EINTR) {
  }
}

Child::~Child() {
  if (!result_path.empty()) unlink(result_path.c_str());
  if (!input_path.empty()) unlink(input_path.c_str());
}

Child spawn(int mode) {
  Child c;
  char path[] = "/tmp/osmo-ckpt-test-XXXXXX";
  int rfd = mkstemp(path);
  c.result_path = path;
  char ipath[] = "/tmp/osmo-ckpt-input-XXXXXX";
  int ifd = mkstemp(ipath);
  c.input_path = ipath;
  EXPECT_EQ(write(ifd, "input", 5), 5);
  close(ifd);
  int ready[2];
  EXPECT_EQ(pipe(ready), 0);
  std::uint64_t want = expected_result();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(rfd, 3);
    dup2(ready[1], 4);
    int in = open(c.input_path.c_str(), O_RDONLY);
    dup2(in, 5);
    syscall(SYS_close_range, 6u, ~0u, 0u);
    struct sigaction sa {};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, nullptr);
    // SIGUSR1 is blocked except inside sigsuspend: a restored process re-executes the
    // interrupted call, so a handler that ran just before must not be a lost wake-up.
    sigset_t usr1, waitmask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &waitmask);
    sigdelset(&waitmask, SIGUSR1);
    if (mode == 1) {
      // The helper thread blocks every signal, so SIGUSR1 always reaches the main thread.
      sigset_t all, old_mask;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, &old_mask);
      pthread_t t;
      pthread_create(&t, nullptr, [](void*) -> void* { for (;;) pause(); }, nullptr);
      pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    }
    if (mode == 2) eventfd(0, 0);
    std::uint64_t* heap = fresh_heap();
    std::uint64_t acc = 1;
    double f = 1.0;
    char one = 1;
    (void)!write(4, &one, 1);
    close(4);
    for (int i = 0; i < kSteps; i++) {
      acc = step(acc, heap, i, &f);
      timespec ts{0, 1'000'000};
      nanosleep(&ts, nullptr);
    }
    while (!g_usr1) sigsuspend(&waitmask);
    (void)!pwrite(3, &acc, 8, 0);
    _exit(acc == want ? 0 : 1);
  }
  close(rfd);
  close(ready[1]);
  char b;
  EXPECT_EQ(read(ready[0], &b, 1), 1);
  close(ready[0]);
  c.pid = pid;
  c.guard = KillOnExit(pid);
  usleep(20'000);  // well inside the loop
  return c;
}

std::uint64_t read_result(const std::string& path) {
  std::uint64_t v = 0;
  UniqueFd fd(open(path.c_str(), O_RDONLY));
  EXPECT_EQ(pread(fd.get(), &v, 8, 0), 8);
  return v;
}

int wait_status(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return 128 + WTERMSIG(st);
}

int wait_status_bounded(pid_t pid, int seconds) {
  for (int i = 0; i < seconds * 100; i++) {
    int st = 0;
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(10'000);
  }
  kill(pid, SIGKILL);
  (void)wait_status(pid);
  return -1;
}

void expect_untouched(pid_t pid) {
  auto st = read_status(pid);
  ASSERT_TRUE(st.ok()) << st.error().str();
  EXPECT_EQ(st->tracer_pid, 0) << "left traced";
  EXPECT_NE(st->state, 'T') << "left stopped";
  EXPECT_NE(st->state, 't') << "left stopped in ptrace";
}

Result<UniqueFd> dump(pid_t pid, AfterDump after, bool compress) {
  UniqueFd fd(memfd_create("image", MFD_CLOEXEC));
  CheckpointOptions o;
  o.after = after;
  o.compress = compress;
  OSMO_TRY(checkpoint(pid, fd.get(), o));
  lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

int restore_and_finish(int image_fd, std::int32_t expect_pid) {
  lseek(image_fd, 0, SEEK_SET);
  auto r = restore(image_fd, RestoreOptions{});
  EXPECT_TRUE(r.ok()) << r.error().str();
  if (!r.ok()) return -1;
  EXPECT_EQ(r->image_pid, expect_pid);
  // The restored process continues its loop, then waits for SIGUSR1 in its own handler.
  EXPECT_EQ(kill(r->pid, SIGUSR1), 0);
  close(r->pidfd);
  return wait_status(r->init_pid);
}

}  // namespace osmo::ckpt::testing
