// SPDX-License-Identifier: GPL-2.0-or-later
// Process trees through the transaction API (ckpt.hpp, docs/engine.md "Process trees"): a held
// tree is frozen, resumed and killed as one; a tree restored and held is stopped as a whole until
// commit, and abort leaves nothing; the exit status is the main process's; a tree that keeps
// forking is frozen whole or refused, never in part.
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ckpt/ckpt.hpp"
#include "ckpt/proc.hpp"
#include "platform/linux/proc_files.hpp"
#include "test_child.hpp"

namespace osmo::ckpt::testing {
namespace {

bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

char state_of(pid_t pid) {
  auto st = read_status(pid);
  return st.ok() ? st->state : '?';
}

template <typename F>
auto on_other_thread(F f) -> decltype(f()) {
  decltype(f()) out{};
  std::thread([&] { out = f(); }).join();
  return out;
}

// A parent and two children counting in memory shared with us (one slot each), 1 ms per step.
struct CountingTree {
  volatile std::uint64_t* count = nullptr;  // [0] parent, [1], [2] children
  pid_t pid = -1;
  KillOnExit guard;
  ~CountingTree() {
    if (pid > 0) {
      ::kill(-pid, SIGKILL);  // the whole group: the children too
      ::kill(pid, SIGKILL);
      int st;
      ::waitpid(pid, &st, 0);
    }
    if (count != nullptr) munmap(const_cast<std::uint64_t*>(count), 4096);
  }
  std::vector<std::uint64_t> snapshot() const { return {count[0], count[1], count[2]}; }
};

void spawn_counting_tree(CountingTree* t) {
  void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  t->count = static_cast<volatile std::uint64_t*>(m);
  t->pid = fork();
  if (t->pid == 0) {
    syscall(SYS_close_range, 3u, ~0u, 0u);
    setpgid(0, 0);  // a group of its own, which the test kills as a whole at the end
    int slot = 0;
    for (int i = 1; i <= 2 && slot == 0; i++)
      if (fork() == 0) slot = i;
    // (No PR_SET_PDEATHSIG: killing the held tree must kill every process itself.)
    for (;;) {
      t->count[slot] = t->count[slot] + 1;
      usleep(1000);
    }
  }
  setpgid(t->pid, t->pid);
  for (int i = 0; i < 3000 && (t->count[0] < 20 || t->count[1] < 20 || t->count[2] < 20); i++) usleep(1000);
  ASSERT_TRUE(t->count[0] >= 20 && t->count[1] >= 20 && t->count[2] >= 20) << "the tree did not start";
}

TEST(Tree, HeldTreeIsFrozenWholeAndResumesWhole) {
  REQUIRE_ROOT();
  CountingTree t;
  ASSERT_NO_FATAL_FAILURE(spawn_counting_tree(&t));
  UniqueFd img(memfd_create("image", MFD_CLOEXEC));
  CheckpointOptions o;
  o.scope = TreeScope::kTree;
  auto held = checkpoint_and_hold(t.pid, img.get(), o);
  ASSERT_TRUE(held.ok()) << held.error().str();
  EXPECT_EQ(held->pids().size(), 3u);
  EXPECT_EQ(held->pids().front(), t.pid) << "the main process first";
  auto at_hold = t.snapshot();
  usleep(50'000);
  EXPECT_EQ(t.snapshot(), at_hold) << "no process of a held tree may run";
  for (pid_t p : held->pids()) EXPECT_EQ(state_of(p), 't') << "pid " << p;
  Status r = on_other_thread([&] { return held->resume(); });
  ASSERT_TRUE(r.ok()) << r.error().str();
  usleep(50'000);
  auto after = t.snapshot();
  for (int i = 0; i < 3; i++) EXPECT_GT(after[i], at_hold[i]) << "process " << i << " did not run on";
}

TEST(Tree, HeldTreeKilledWhole) {
  REQUIRE_ROOT();
  CountingTree t;
  ASSERT_NO_FATAL_FAILURE(spawn_counting_tree(&t));
  UniqueFd img(memfd_create("image", MFD_CLOEXEC));
  CheckpointOptions o;
  o.scope = TreeScope::kTree;
  auto held = checkpoint_and_hold(t.pid, img.get(), o);
  ASSERT_TRUE(held.ok()) << held.error().str();
  std::vector<pid_t> pids = held->pids();
  ASSERT_EQ(pids.size(), 3u);
  auto at_hold = t.snapshot();
  Status k = on_other_thread([&] { return held->kill(); });
  ASSERT_TRUE(k.ok()) << k.error().str();
  usleep(100'000);
  EXPECT_EQ(t.snapshot(), at_hold) << "killed while held, a process ran again";
  EXPECT_TRUE(gone(pids[0])) << "the main process (our child, reaped by the holder) is left";
  for (std::size_t i = 1; i < pids.size(); i++)
    EXPECT_TRUE(gone(pids[i]) || state_of(pids[i]) == 'Z') << "child " << pids[i] << " still runs";
}

// A parent whose two children sleep a little and exit 10 and 11; the parent exits with the sum
// of what its waitpid() collected (21), or 1 if anything is off.
pid_t spawn_waiting_tree() {
  pid_t pid = fork();
  if (pid != 0) return pid;
  syscall(SYS_close_range, 3u, ~0u, 0u);
  pid_t kids[2];
  for (int i = 0; i < 2; i++) {
    kids[i] = fork();
    if (kids[i] == 0) {
      for (int k = 0; k < 30; k++) usleep(10'000);
      _exit(10 + i);
    }
  }
  int sum = 0;
  for (int i = 0; i < 2; i++) {
    int st = 0;
    if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st)) _exit(1);
    sum += WEXITSTATUS(st);
  }
  _exit(sum);
}

std::vector<pid_t> children_of(pid_t p) { return platform::process_children(p); }

TEST(Tree, RestoreHeldTreeStaysStoppedUntilCommitThenRunsWhole) {
  REQUIRE_ROOT();
  pid_t orig = spawn_waiting_tree();
  KillOnExit orig_guard(orig);
  usleep(50'000);
  UniqueFd img(memfd_create("image", MFD_CLOEXEC));
  CheckpointOptions o;
  o.scope = TreeScope::kTree;
  o.after = AfterDump::kKill;
  Status d = checkpoint(orig, img.get(), o);
  ASSERT_TRUE(d.ok()) << d.error().str();
  EXPECT_TRUE(gone(orig)) << "killed after the dump (and reaped by the dumping thread, its tracer)";
  lseek(img.get(), 0, SEEK_SET);
  for (bool commit : {false, true}) {
    SCOPED_TRACE(commit ? "commit" : "abort");
    lseek(img.get(), 0, SEEK_SET);
    auto pending = restore_held(img.get(), RestoreOptions{});
    ASSERT_TRUE(pending.ok()) << pending.error().str();
    RestoredProcess p = pending->process();
    KillOnExit init_guard(p.init_pid);
    EXPECT_EQ(p.processes, 3u);
    EXPECT_EQ(p.image_pid, orig);
    std::vector<pid_t> kids = children_of(p.pid);
    ASSERT_EQ(kids.size(), 2u) << "the restored parent's children are its own";
    usleep(100'000);
    EXPECT_EQ(state_of(p.pid), 't');
    for (pid_t k : kids) EXPECT_EQ(state_of(k), 't') << "child " << k << " runs before the commit";
    if (!commit) {
      on_other_thread([&] {
        pending->abort();
        return 0;
      });
      EXPECT_TRUE(gone(p.pid));
      for (pid_t k : kids) EXPECT_TRUE(gone(k)) << "child " << k << " left after abort";
      EXPECT_TRUE(gone(p.init_pid));
      continue;
    }
    Status s = on_other_thread([&] { return pending->commit(); });
    ASSERT_TRUE(s.ok()) << s.error().str();
    UniqueFd pidfd(pending->process().pidfd);
    EXPECT_EQ(wait_status_bounded(p.init_pid, 20), 21) << "init exits with the main process's status";
    auto ws = restored_wait_status(pidfd.get());
    ASSERT_TRUE(ws.ok()) << ws.error().str();
    EXPECT_TRUE(WIFEXITED(*ws) && WEXITSTATUS(*ws) == 21) << *ws;
  }
}

// A parent forking and reaping short-lived children without pause: every tree checkpoint either
// succeeds (the tree held still once all were stopped) or is refused as a tree that kept
// changing; the parent always goes on untouched.
TEST(Tree, ForkingTreeIsFrozenWholeOrRefused) {
  REQUIRE_ROOT();
  pid_t pid = fork();
  if (pid == 0) {
    syscall(SYS_close_range, 3u, ~0u, 0u);
    for (;;) {
      pid_t c = fork();
      if (c == 0) {
        usleep(200);
        _exit(0);
      }
      int st;
      waitpid(c, &st, 0);
    }
  }
  KillOnExit guard(pid);
  usleep(20'000);
  CheckpointOptions o;
  o.scope = TreeScope::kTree;
  int ok = 0, refused = 0;
  for (int i = 0; i < 10; i++) {
    UniqueFd img(memfd_create("image", MFD_CLOEXEC));
    Status s = checkpoint(pid, img.get(), o);
    if (s.ok()) {
      ok++;
      lseek(img.get(), 0, SEEK_SET);
      auto j = show_image(img.get());
      ASSERT_TRUE(j.ok()) << j.error().str();
      std::size_t live = 0;
      for (const auto& p : (*j)["tree"])
        if (p["state"] == "live") live++;
      EXPECT_EQ((*j)["processes"].size(), live) << "every live process of the tree has its image";
      EXPECT_EQ((*j)["tree"][0]["pid"], pid);
    } else {
      refused++;
      EXPECT_NE(s.error().message.find("kept changing"), std::string::npos) << s.error().str();
    }
    expect_untouched(pid);
  }
  EXPECT_GT(ok, 0) << "never frozen in 10 tries (" << refused << " refused)";
  ::kill(pid, SIGKILL);
  wait_status(pid);
}

int sleep_forever(void*) {
  for (;;) pause();
}

// A child sharing its parent's address space without being a thread (clone(CLONE_VM), as a vfork
// child before its exec) cannot be carried as a process of its own: refused, naming both, after
// the dump tried again in case it was a vfork about to exec; the tree goes on untouched.
TEST(Tree, SharedAddressSpaceIsRefused) {
  REQUIRE_ROOT();
  pid_t pid = fork();
  if (pid == 0) {
    syscall(SYS_close_range, 3u, ~0u, 0u);
    static char stack[64 * 1024];
    if (clone(sleep_forever, stack + sizeof stack, CLONE_VM | SIGCHLD, nullptr) < 0) _exit(1);
    for (;;) pause();
  }
  KillOnExit guard(pid);
  std::vector<pid_t> kids;
  for (int i = 0; i < 2000 && kids.empty(); i++) {
    kids = platform::process_children(pid);
    usleep(1000);
  }
  ASSERT_EQ(kids.size(), 1u);
  KillOnExit kid_guard(kids[0]);
  CheckpointOptions o;
  o.scope = TreeScope::kTree;
  Status pre = preflight(pid, o);
  ASSERT_FALSE(pre.ok());
  EXPECT_NE(pre.error().message.find("share one address space"), std::string::npos) << pre.error().str();
  UniqueFd img(memfd_create("image", MFD_CLOEXEC));
  Status s = checkpoint(pid, img.get(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("share one address space"), std::string::npos) << s.error().str();
  expect_untouched(pid);
  expect_untouched(kids[0]);
  ::kill(kids[0], SIGKILL);
}

}  // namespace
}  // namespace osmo::ckpt::testing
