// SPDX-License-Identifier: GPL-2.0-or-later
// Reading /proc/PID files (platform/linux/proc_files) of this process and of children we fork:
// stat and status of a live, a stopped and a gone process, the children of every thread, and
// small files read without allocating.
#include "platform/linux/proc_files.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "platform/linux/sysfs_io.hpp"

#include "eventually.hpp"

namespace osmo::platform {
namespace {

// A child that sleeps until killed.
struct Child {
  pid_t pid = -1;
  Child() {
    pid = ::fork();
    if (pid == 0) {
      ::pause();
      ::_exit(0);
    }
  }
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

using osmo::testing::eventually;

TEST(ProcFiles, ReadSmallFile) {
  char buf[8];
  std::string_view t = read_small_file("/proc/self/stat", buf, sizeof buf);
  EXPECT_EQ(t.size(), sizeof buf);  // cut at the buffer's end
  EXPECT_EQ(t, read_text_file("/proc/self/stat")->substr(0, 8));
  EXPECT_TRUE(read_small_file("/proc/nonexistent-file", buf, sizeof buf).empty());
  char big[4096];
  t = read_small_file("/proc/self/comm", big, sizeof big);
  EXPECT_FALSE(t.empty());
  EXPECT_EQ(t.back(), '\n');
}

TEST(ProcFiles, StatOfLiveStoppedAndGoneProcesses) {
  auto self = read_pid_stat(::getpid());
  ASSERT_TRUE(self.ok()) << self.error().str();
  EXPECT_EQ(self->state, 'R');  // reading its own stat, it runs
  EXPECT_GT(self->start_ticks, 0u);
  EXPECT_GT(self->rss_pages, 0);
  EXPECT_EQ(process_start_ticks(::getpid()), self->start_ticks);

  Child c;
  ASSERT_GT(c.pid, 0);
  auto st = read_pid_stat(c.pid);
  ASSERT_TRUE(st.ok());
  EXPECT_GE(st->start_ticks, self->start_ticks);
  ::kill(c.pid, SIGSTOP);
  EXPECT_TRUE(eventually([&] { return read_pid_stat(c.pid)->state == 'T'; }));
  ::kill(c.pid, SIGKILL);
  EXPECT_TRUE(eventually([&] { return read_pid_stat(c.pid)->state == 'Z'; }));  // not reaped yet
  ::waitpid(c.pid, nullptr, 0);
  const pid_t gone = std::exchange(c.pid, -1);
  EXPECT_EQ(process_start_ticks(gone), 0u);
  EXPECT_EQ(process_start_ticks(0), 0u);
  EXPECT_EQ(process_start_ticks(-1), 0u);
  auto r = read_pid_stat(gone);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_EQ(r.error().message, fmt::format("cannot open /proc/{}/stat", gone));
}

TEST(ProcFiles, StatusOfThisProcess) {
  auto s = read_pid_status(::getpid());
  ASSERT_TRUE(s.ok()) << s.error().str();
  EXPECT_TRUE(s->has_uid && s->has_gid && s->has_groups);
  EXPECT_EQ(s->uid[1], ::geteuid());
  EXPECT_EQ(s->gid[1], ::getegid());
  EXPECT_GE(s->threads, 1);
  ASSERT_FALSE(s->nspid.empty());
  EXPECT_EQ(s->nspid.back(), ::getpid());  // in our own pid namespace, the last one is ours
  auto gone = read_pid_status(999999999);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ENOENT);
  EXPECT_NE(gone.error().message.find("/proc/999999999/status"), std::string::npos);
}

TEST(ProcFiles, SmapsOfThisProcess) {
  const std::size_t len = 4 * 4096;
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(::madvise(p, len, MADV_DONTFORK), 0);  // "dc" in VmFlags
  auto vmas = read_smaps(::getpid());
  const auto start = reinterpret_cast<std::uint64_t>(p);
  ::munmap(p, len);
  ASSERT_TRUE(vmas.ok()) << vmas.error().str();
  auto it = std::find_if(vmas->begin(), vmas->end(), [&](const SmapsVma& v) { return v.start == start; });
  ASSERT_NE(it, vmas->end());
  EXPECT_EQ(it->end, start + len);
  EXPECT_TRUE(has_vm_flag(it->vm_flags, "dc")) << it->vm_flags;
  EXPECT_TRUE(has_vm_flag(it->vm_flags, "wr")) << it->vm_flags;
  EXPECT_FALSE(read_smaps(999999999).ok());
}

TEST(ProcFiles, ChildrenOfEveryThread) {
  Child a, b;
  // A child forked by another thread is that thread's child: it is listed too.
  Child* c = nullptr;
  std::thread t([&] { c = new Child(); });
  t.join();
  std::vector<pid_t> kids = process_children(::getpid());
  std::sort(kids.begin(), kids.end());
  std::vector<pid_t> want{a.pid, b.pid};
  // The thread has ended: its children went to the thread group (listed under the main thread
  // or the remaining ones). Either way they are ours.
  want.push_back(c->pid);
  std::sort(want.begin(), want.end());
  for (pid_t w : want) EXPECT_NE(std::find(kids.begin(), kids.end(), w), kids.end()) << w;
  delete c;
  EXPECT_TRUE(process_children(999999999).empty());
}

}  // namespace
}  // namespace osmo::platform
