// SPDX-License-Identifier: GPL-2.0-or-later
// Pre-copy's engine side: an image assembled from rounds. A running child's memory is copied
// while it runs (the write tracker armed by track_running_process), some pages change after
// their copy (one to all-zero, one rewritten with its old value), the checkpoint leaves out the
// pages the copy holds clean (CheckpointOptions::precopied), and the restore takes them from a
// page store (RestoreOptions::page_store). The restored memory must equal the original's at the
// freeze, byte for byte, although the store's copies of every changed page are made wrong on
// purpose (the image must win there); and the same image restored without the store must not.
// Needs root (ptrace): skips outside CI, fails under CI=true.
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/dirty_pages.hpp"
#include "test_child.hpp"

namespace osmo::ckpt {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the tests' own helpers

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kPages = 1024;

// The test's page store: the pages of one process, by address.
class MapStore final : public PageStore {
 public:
  explicit MapStore(std::int32_t pid) : pid_(pid) {}
  std::vector<PageRun> runs(std::int32_t image_pid) const override {
    std::vector<PageRun> out;
    if (image_pid != pid_) return out;
    for (const auto& [a, _] : pages)
      if (!out.empty() && out.back().vaddr + out.back().pages * kPage == a)
        out.back().pages++;
      else
        out.push_back({a, 1});
    return out;
  }
  const std::uint8_t* page(std::int32_t image_pid, std::uint64_t addr) const override {
    auto it = pages.find(addr);
    return image_pid == pid_ && it != pages.end() ? it->second.data() : nullptr;
  }
  std::map<std::uint64_t, std::vector<std::uint8_t>> pages;

 private:
  std::int32_t pid_;
};

std::vector<std::uint8_t> read_remote(pid_t pid, std::uint64_t addr, std::uint64_t len) {
  std::vector<std::uint8_t> b(len);
  iovec l{b.data(), len}, r{reinterpret_cast<void*>(addr), len};
  EXPECT_EQ(process_vm_readv(pid, &l, 1, &r, 1, 0), static_cast<ssize_t>(len)) << "read pid " << pid;
  return b;
}

void write_remote(pid_t pid, std::uint64_t addr, const std::vector<std::uint8_t>& b) {
  iovec l{const_cast<std::uint8_t*>(b.data()), b.size()}, r{reinterpret_cast<void*>(addr), b.size()};
  ASSERT_EQ(process_vm_writev(pid, &l, 1, &r, 1, 0), static_cast<ssize_t>(b.size()));
}

std::vector<PageRun> to_runs(const std::vector<PageRange>& rs) {
  std::vector<PageRun> out;
  for (const PageRange& r : rs) out.push_back({r.start, r.pages()});
  return out;
}

TEST(Precopy, ImageAssembledFromRoundsAndTheStore) {
  REQUIRE_ROOT();
  auto* m = static_cast<std::uint8_t*>(
      mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  for (std::uint64_t i = 0; i < kPages; i++) std::memset(m + i * kPage, static_cast<int>(i * 7 + 1), kPage);
  for (std::uint64_t i = 10; i < 20; i++) std::memset(m + i * kPage, 0, kPage);  // present, all zero
  const auto base = reinterpret_cast<std::uint64_t>(m);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    syscall(SYS_close_range, 3u, ~0u, 0u);
    for (;;) pause();
  }
  KillOnExit guard(child);
  munmap(m, kPages * kPage);

  auto tracker = track_running_process(child);
  ASSERT_TRUE(tracker.ok()) << tracker.error().str();
  // Round 0: the whole region, copied while the child runs.
  ASSERT_TRUE(tracker->collect().ok());
  MapStore store(child);  // not in a pid namespace of its own: its image pid is its pid
  std::vector<std::uint8_t> all = read_remote(child, base, kPages * kPage);
  for (std::uint64_t i = 0; i < kPages; i++)
    store.pages[base + i * kPage].assign(all.begin() + i * kPage, all.begin() + (i + 1) * kPage);
  std::vector<PageRange> held{{base, base + kPages * kPage}};

  // Writes after the copy: page 5 changes (sent again by round 1), page 10 (zero) is written and
  // cleared again, page 100 is rewritten with its own value: 10 and 100 stay unsent (stale).
  write_remote(child, base + 5 * kPage, std::vector<std::uint8_t>(kPage, 0xaa));
  write_remote(child, base + 10 * kPage, std::vector<std::uint8_t>(kPage, 0x55));
  write_remote(child, base + 10 * kPage, std::vector<std::uint8_t>(kPage, 0));
  write_remote(child, base + 100 * kPage, store.pages[base + 100 * kPage]);
  auto round1 = tracker->collect();
  ASSERT_TRUE(round1.ok()) << round1.error().str();
  const std::vector<PageRange> want1{{base + 5 * kPage, base + 6 * kPage},
                                     {base + 10 * kPage, base + 11 * kPage},
                                     {base + 100 * kPage, base + 101 * kPage}};
  EXPECT_EQ(subtract(want1, *round1), std::vector<PageRange>{}) << "round 1 missed a written page";
  store.pages[base + 5 * kPage] = read_remote(child, base + 5 * kPage, kPage);  // sent again
  std::vector<PageRange> stale = subtract(*round1, {{base + 5 * kPage, base + 6 * kPage}});
  // After round 1: page 200 changes; it is only in the final collect.
  write_remote(child, base + 200 * kPage, std::vector<std::uint8_t>(kPage, 0x77));
  // The store's copies of every page changed since its copy are made wrong: the image must win.
  for (std::uint64_t i : {10, 100, 200}) store.pages[base + i * kPage].assign(kPage, 0xee);

  UniqueFd img(memfd_create("image", MFD_CLOEXEC));
  CheckpointOptions co;
  int asked = 0;
  co.precopied = [&](pid_t pid) -> Result<PrecopiedPages> {
    asked++;
    EXPECT_EQ(pid, child);
    OSMO_ASSIGN_OR_RETURN(auto d, tracker->collect());
    std::vector<PageRange> dirty = d;
    dirty.insert(dirty.end(), stale.begin(), stale.end());
    return PrecopiedPages{to_runs(held), to_runs(subtract(held, coalesce(dirty)))};
  };
  CheckpointStats stats;
  auto h = checkpoint_and_hold(child, img.get(), co, &stats);
  ASSERT_TRUE(h.ok()) << h.error().str();
  EXPECT_EQ(asked, 1);
  // Page 5 was sent again after its change: clean too.
  EXPECT_EQ(stats.pages_precopied, kPages - 3) << "every clean page left out, the three changed ones carried";
  const std::vector<std::uint8_t> frozen = read_remote(child, base, kPages * kPage);
  std::uint64_t nonzero_clean = 0;  // what a restore without the store gets wrong (zero instead)
  const std::vector<std::uint8_t> zero(kPage, 0);
  for (std::uint64_t i = 0; i < kPages; i++)
    if (i != 10 && i != 100 && i != 200 && std::memcmp(frozen.data() + i * kPage, zero.data(), kPage) != 0)
      nonzero_clean++;

  for (bool with_store : {true, false}) {
    ASSERT_EQ(lseek(img.get(), 0, SEEK_SET), 0);
    RestoreOptions ro;
    if (with_store) ro.page_store = &store;
    auto pending = restore_held(img.get(), ro);
    ASSERT_TRUE(pending.ok()) << pending.error().str();
    KillOnExit init_guard(pending->process().init_pid);
    const std::vector<std::uint8_t> restored = read_remote(pending->process().pid, base, kPages * kPage);
    std::uint64_t differ = 0;
    std::string which;
    for (std::uint64_t i = 0; i < kPages; i++) {
      const bool d = std::memcmp(restored.data() + i * kPage, frozen.data() + i * kPage, kPage) != 0;
      differ += d ? 1 : 0;
      if (d && (i == 10 || i == 100 || i == 200 || std::memcmp(frozen.data() + i * kPage, zero.data(), kPage) == 0))
        which += " " + std::to_string(i);  // pages the image carries or that are zero: never wrong
    }
    EXPECT_EQ(which, "") << "pages restored wrong although the image carries them";
    if (with_store)
      EXPECT_EQ(differ, 0u) << "the restored memory differs from the original's at the freeze";
    else
      EXPECT_EQ(differ, nonzero_clean) << "without the store, exactly the clean non-zero pages must be missing";
    pending->abort();
    int st;
    waitpid(pending->process().init_pid, &st, 0);
  }
  ASSERT_TRUE(h->kill().ok());
}

}  // namespace
}  // namespace osmo::ckpt
