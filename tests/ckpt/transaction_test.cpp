// SPDX-License-Identifier: GPL-2.0-or-later
// The migration's building blocks (ckpt.hpp): preflight, checkpoint_and_hold / HeldProcess,
// restore_held / PendingRestore, images streamed over stream sockets with the caller's own bytes
// after them, and the restored process's exit status. The second half of each transaction is
// called from another thread than the first, as a daemon may. Needs root: skips outside CI,
// fails under CI=true.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

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

// Runs f on a thread of its own and waits: the second half of a transaction from another thread
// than the first.
template <typename F>
auto on_other_thread(F f) -> decltype(f()) {
  std::optional<decltype(f())> out;
  std::thread([&] { out.emplace(f()); }).join();
  return std::move(*out);
}

bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

char state_of(pid_t pid) {
  auto st = read_status(pid);
  return st.ok() ? st->state : '?';
}

// No child of ours (an init of a restore) is left, dead or alive.
void expect_no_children(const char* when) {
  int st;
  errno = 0;
  EXPECT_EQ(waitpid(-1, &st, WNOHANG), -1) << when << ": a child (init) was left behind";
  EXPECT_EQ(errno, ECHILD) << when;
}

TEST(Transaction, HoldThenResumeContinuesExactly) {
  REQUIRE_ROOT();
  Child c = spawn();
  UniqueFd img(memfd_create("image", MFD_CLOEXEC));
  CheckpointStats stats;
  auto held = checkpoint_and_hold(c.pid, img.get(), CheckpointOptions{}, &stats);
  ASSERT_TRUE(held.ok()) << held.error().str();
  EXPECT_EQ(held->pid(), c.pid);
  auto st = read_status(c.pid);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, 't') << "a held process stays in its ptrace stop";
  EXPECT_NE(st->tracer_pid, 0);
  usleep(50'000);
  EXPECT_EQ(state_of(c.pid), 't');
  Status r = on_other_thread([&] { return held->resume(); });
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_FALSE(held->resume().ok()) << "resume() twice";
  expect_untouched(c.pid);
  kill(c.pid, SIGUSR1);
  EXPECT_EQ(wait_status(c.pid), 0) << "the original must finish exactly after the hold";
  EXPECT_EQ(read_result(c.result_path), expected_result());
  // The image written during the hold is complete: a copy finishes exactly too.
  EXPECT_EQ(restore_and_finish(img.get(), c.pid), 0);
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

// A child that counts in memory shared with us, 1 ms per step: while it runs the count grows.
struct Counter {
  pid_t pid = -1;
  volatile std::uint64_t* count = nullptr;
  ~Counter() {
    if (pid > 0 && kill(pid, SIGKILL) == 0) waitpid(pid, nullptr, 0);
    if (count != nullptr) munmap(const_cast<std::uint64_t*>(count), 4096);
  }
};

void spawn_counter(Counter* c) {
  void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  c->count = static_cast<volatile std::uint64_t*>(m);
  c->pid = fork();
  if (c->pid == 0) {
    syscall(SYS_close_range, 3u, ~0u, 0u);
    for (;;) {
      *c->count = *c->count + 1;
      usleep(1000);
    }
  }
  for (int i = 0; i < 2000 && *c->count < 20; i++) usleep(1000);
  ASSERT_GE(*c->count, 20u) << "the counter did not start";
}

TEST(Transaction, HoldThenKillNeverRunsAgain) {
  REQUIRE_ROOT();
  Counter c;
  ASSERT_NO_FATAL_FAILURE(spawn_counter(&c));
  UniqueFd img(memfd_create("image", MFD_CLOEXEC));
  auto held = checkpoint_and_hold(c.pid, img.get(), CheckpointOptions{});
  ASSERT_TRUE(held.ok()) << held.error().str();
  std::uint64_t at_hold = *c.count;
  usleep(50'000);
  EXPECT_EQ(*c.count, at_hold) << "a held process must not run";
  Status k = on_other_thread([&] { return held->kill(); });
  ASSERT_TRUE(k.ok()) << k.error().str();
  usleep(50'000);
  EXPECT_EQ(*c.count, at_hold) << "killed while held, it ran again";
  EXPECT_TRUE(gone(c.pid)) << "killed while held, it still exists (reaped by the holder's wait)";
  c.pid = -1;
  EXPECT_FALSE(held->kill().ok()) << "kill() of a process no longer held";
}

TEST(Transaction, RestoreHeldThenCommitRuns) {
  REQUIRE_ROOT();
  Child c = spawn();
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_TRUE(img.ok()) << img.error().str();
  auto pending = restore_held(img->get(), RestoreOptions{});
  ASSERT_TRUE(pending.ok()) << pending.error().str();
  RestoredProcess p = pending->process();
  KillOnExit init_guard(p.init_pid);
  EXPECT_EQ(p.image_pid, c.pid);
  EXPECT_EQ(state_of(p.pid), 't') << "restored but not let go: stopped";
  EXPECT_FALSE(gone(p.init_pid));
  usleep(50'000);
  EXPECT_EQ(state_of(p.pid), 't');
  Status s = on_other_thread([&] { return pending->commit(); });
  ASSERT_TRUE(s.ok()) << s.error().str();
  p = pending->process();
  ASSERT_GE(p.pidfd, 0) << "after commit the pidfd is the caller's";
  UniqueFd pidfd(p.pidfd);
  pending->abort();  // a no-op after a commit
  EXPECT_FALSE(gone(p.pid)) << "abort() after commit() must not kill";
  EXPECT_EQ(kill(p.pid, SIGUSR1), 0);
  EXPECT_EQ(wait_status(p.init_pid), 0);
  EXPECT_EQ(read_result(c.result_path), expected_result());
  auto ws = restored_wait_status(pidfd.get());
  ASSERT_TRUE(ws.ok()) << ws.error().str();
  EXPECT_TRUE(WIFEXITED(*ws));
  EXPECT_EQ(WEXITSTATUS(*ws), 0);
}

TEST(Transaction, RestoreHeldThenAbortLeavesNothing) {
  REQUIRE_ROOT();
  Child c = spawn();
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_TRUE(img.ok()) << img.error().str();
  for (bool by_destructor : {false, true}) {
    SCOPED_TRACE(by_destructor ? "destructor" : "abort()");
    lseek(img->get(), 0, SEEK_SET);
    RestoredProcess p;
    {
      auto pending = restore_held(img->get(), RestoreOptions{});
      ASSERT_TRUE(pending.ok()) << pending.error().str();
      p = pending->process();
      ASSERT_FALSE(gone(p.pid));
      if (!by_destructor) on_other_thread([&] {
          pending->abort();
          return 0;
        });
    }
    EXPECT_TRUE(gone(p.pid)) << "the restored process is left";
    EXPECT_TRUE(gone(p.init_pid)) << "init is left";
    expect_no_children("after abort");
  }
  EXPECT_EQ(restore_and_finish(img->get(), c.pid), 0) << "the image must still restore after aborts";
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

const std::string kTrailer = "the migration's own bytes, after END";

// A read that would wait for bytes a restore took fails after 10 s instead of hanging the test.
void no_hang(int sock) {
  timeval tv{10, 0};
  ASSERT_EQ(setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
}

// Streams the child's image from `out` to `in` (hold at the source, restore_held at the target)
// with kTrailer written after it; the target must find the trailer intact after restore_held,
// and the restored copy must finish exactly once committed.
void stream_and_commit(int out, int in, bool compress) {
  Child c = spawn();
  std::optional<Result<HeldProcess>> held;
  std::thread source([&] {
    CheckpointOptions o;
    o.compress = compress;
    held.emplace(checkpoint_and_hold(c.pid, out, o));
    if (held->ok()) {
      EXPECT_EQ(write(out, kTrailer.data(), kTrailer.size()), static_cast<ssize_t>(kTrailer.size()));
    }
    // The source does not close: a restore that read past END would wait here forever (or take
    // the trailer).
  });
  auto pending = restore_held(in, RestoreOptions{});
  source.join();
  std::optional<HeldProcess> source_copy;  // resumed, then killed with the Child, if we fail
  if (held->ok()) source_copy.emplace(std::move(**held));
  ASSERT_TRUE(held->ok()) << held->error().str();
  ASSERT_TRUE(pending.ok()) << pending.error().str();
  no_hang(in);
  std::string got(kTrailer.size(), '\0');
  std::size_t n = 0;
  while (n < got.size()) {
    ssize_t r = read(in, got.data() + n, got.size() - n);
    ASSERT_GT(r, 0) << "the stream ended before the trailer";
    n += static_cast<std::size_t>(r);
  }
  EXPECT_EQ(got, kTrailer) << "the restore consumed bytes after END";
  ASSERT_TRUE(source_copy->kill().ok());  // the source copy goes, the target's runs
  ASSERT_TRUE(pending->commit().ok());
  RestoredProcess p = pending->process();
  KillOnExit init_guard(p.init_pid);
  close(p.pidfd);
  EXPECT_EQ(kill(p.pid, SIGUSR1), 0);
  EXPECT_EQ(wait_status(p.init_pid), 0);
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

TEST(Transaction, StreamsOverAUnixSocketAndLeavesWhatFollows) {
  REQUIRE_ROOT();
  for (bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "compressed" : "plain");
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd a(sv[0]), b(sv[1]);
    // The smallest buffers the kernel allows: every section goes in many short writes and reads.
    int small = 4096;
    setsockopt(a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(b.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    stream_and_commit(a.get(), b.get(), compress);
  }
}

TEST(Transaction, StreamsOverLoopbackTcpAndLeavesWhatFollows) {
  REQUIRE_ROOT();
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener.get(), 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  UniqueFd out(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(connect(out.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  UniqueFd in(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(in.valid());
  stream_and_commit(out.get(), in.get(), false);
  // Plain checkpoint()/restore() over the same connection, in both directions' worth of use:
  // the engine neither needs nor leaves anything on the socket but the image.
  Child c = spawn();
  std::thread source([&] {
    CheckpointOptions o;
    o.after = AfterDump::kKill;
    Status s = checkpoint(c.pid, out.get(), o);
    EXPECT_TRUE(s.ok()) << s.error().str();
    EXPECT_EQ(write(out.get(), kTrailer.data(), kTrailer.size()), static_cast<ssize_t>(kTrailer.size()));
  });
  auto r = restore(in.get(), RestoreOptions{});
  source.join();
  ASSERT_TRUE(r.ok()) << r.error().str();
  KillOnExit init_guard(r->init_pid);
  no_hang(in.get());
  std::string got(kTrailer.size(), '\0');
  ASSERT_EQ(recv(in.get(), got.data(), got.size(), MSG_WAITALL), static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, kTrailer);
  close(r->pidfd);
  EXPECT_EQ(kill(r->pid, SIGUSR1), 0);
  EXPECT_EQ(wait_status(r->init_pid), 0);
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

// Context switches of every thread of pid: they do not move while it sleeps undisturbed, and
// a PTRACE_SEIZE + INTERRUPT wakes it.
std::uint64_t switches(pid_t pid) {
  std::uint64_t sum = 0;
  DIR* d = opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto text = read_text_file(fmt::format("/proc/{}/task/{}/status", pid, e->d_name));
    if (!text.ok()) continue;
    for (const char* key : {"\nvoluntary_ctxt_switches:", "\nnonvoluntary_ctxt_switches:"}) {
      auto p = text->find(key);
      if (p != std::string::npos) sum += std::stoull(text->substr(p + std::strlen(key)));
    }
  }
  closedir(d);
  return sum;
}

// Waits until pid sleeps in sigsuspend (the child's last wait), at most 10 s.
bool in_sigsuspend(pid_t pid) {
  for (int i = 0; i < 1000; i++) {
    auto t = read_text_file(fmt::format("/proc/{}/syscall", pid));
    if (t.ok() && t->rfind(fmt::format("{} ", SYS_rt_sigsuspend), 0) == 0) return true;
    usleep(10'000);
  }
  return false;
}

TEST(Transaction, PreflightRefusesThreadsWithoutTouching) {
  REQUIRE_ROOT();
  Child threaded = spawn(1);
  ASSERT_TRUE(in_sigsuspend(threaded.pid));
  std::uint64_t before = switches(threaded.pid);
  Status s = ok_status();
  for (int i = 0; i < 20; i++) s = preflight(threaded.pid, CheckpointOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "it has 2 threads (only single-threaded processes are supported)");
  usleep(20'000);
  EXPECT_EQ(switches(threaded.pid), before) << "preflight woke the process";
  expect_untouched(threaded.pid);
  auto img = dump(threaded.pid, AfterDump::kKill);
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().message, fmt::format("cannot checkpoint pid {}: {}", threaded.pid, s.error().message));
  kill(threaded.pid, SIGUSR1);
  EXPECT_EQ(wait_status(threaded.pid), 0);

  // The measure can fail: a dump, which seizes and interrupts, moves it. And preflight accepts
  // what checkpoint() accepts.
  Child plain = spawn();
  ASSERT_TRUE(in_sigsuspend(plain.pid));
  EXPECT_TRUE(preflight(plain.pid, CheckpointOptions{}).ok());
  before = switches(plain.pid);
  usleep(20'000);
  EXPECT_EQ(switches(plain.pid), before) << "the sleeping child moves by itself: the measure means nothing";
  ASSERT_TRUE(dump(plain.pid, AfterDump::kResume).ok());
  EXPECT_GT(switches(plain.pid), before) << "a dump did not move the counters: the measure cannot fail";
  kill(plain.pid, SIGUSR1);
  EXPECT_EQ(wait_status(plain.pid), 0);
}

// Also: restored from a thread that blocks every signal (as a daemon's threads do, for a
// signalfd), init still forwards SIGTERM: it does not inherit that mask.
TEST(Transaction, ExitStatusTellsASignalFromAnExit) {
  REQUIRE_ROOT();
  Child c = spawn();
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_TRUE(img.ok()) << img.error().str();
  auto r = on_other_thread([&] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    return restore(img->get(), RestoreOptions{});
  });
  ASSERT_TRUE(r.ok()) << r.error().str();
  KillOnExit init_guard(r->init_pid);
  UniqueFd pidfd(r->pidfd);
  EXPECT_FALSE(restored_wait_status(pidfd.get()).ok()) << "a running process has no exit status";
  EXPECT_EQ(kill(r->init_pid, SIGTERM), 0);  // forwarded by init
  EXPECT_EQ(wait_status_bounded(r->init_pid, 20), 128 + SIGTERM) << "init's own convention";
  auto ws = restored_wait_status(pidfd.get());
  ASSERT_TRUE(ws.ok()) << ws.error().str();
  EXPECT_TRUE(WIFSIGNALED(*ws)) << "status " << *ws;
  EXPECT_EQ(WTERMSIG(*ws), SIGTERM);
}

// The fault points of the new paths: a hold that fails resumes the original; a commit that
// fails leaves nothing.
TEST(Transaction, FaultsInHoldAndCommitLeaveNothingHalfDone) {
  REQUIRE_ROOT();
  Child c = spawn();
  {
    UniqueFd img(memfd_create("image", MFD_CLOEXEC));
    setenv("OSMO_FAULT", "dump.held", 1);
    auto held = checkpoint_and_hold(c.pid, img.get(), CheckpointOptions{});
    unsetenv("OSMO_FAULT");
    ASSERT_FALSE(held.ok());
    EXPECT_EQ(held.error().message,
              fmt::format("cannot checkpoint pid {}: fault injected at dump.held (OSMO_FAULT)", c.pid));
    expect_untouched(c.pid);
  }
  auto img = dump(c.pid, AfterDump::kKill);
  ASSERT_TRUE(img.ok()) << img.error().str();
  auto pending = restore_held(img->get(), RestoreOptions{});
  ASSERT_TRUE(pending.ok()) << pending.error().str();
  RestoredProcess p = pending->process();
  setenv("OSMO_FAULT", "restore.commit", 1);
  Status s = pending->commit();
  unsetenv("OSMO_FAULT");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "cannot restore: fault injected at restore.commit (OSMO_FAULT)");
  EXPECT_TRUE(gone(p.pid));
  EXPECT_TRUE(gone(p.init_pid));
  expect_no_children("after a failed commit");
  EXPECT_FALSE(pending->commit().ok()) << "commit() after a failed commit";
  EXPECT_EQ(restore_and_finish(img->get(), c.pid), 0);
  EXPECT_EQ(read_result(c.result_path), expected_result());
}

}  // namespace
}  // namespace osmo::ckpt
