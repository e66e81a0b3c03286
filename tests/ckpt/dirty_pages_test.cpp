// SPDX-License-Identifier: GPL-2.0-or-later
// Tests of the dirty-page tracker (src/ckpt/dirty_pages.hpp). The property that matters: a page
// whose content changed is always reported (a miss would silently corrupt a migrated process).
// Where the expected set is known exactly (our own memory, a child that writes on command) the
// report must equal it; under a child writing continuously, every change found by comparing the
// child's memory with our copy must have been reported, and the number of reported pages is
// bounded by the number of writes. Own-process tests need a kernel with PAGEMAP_SCAN and
// asynchronous userfaultfd write protection; tests on other processes also need root. Both skip
// with the reason outside CI and fail under CI=true.
#include "ckpt/dirty_pages.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/scope_guard.hpp"
#include "base/unique_fd.hpp"
#include "ckpt/proc.hpp"
#include "ckpt/ptrace.hpp"

namespace osmo::ckpt {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kHuge = 2u << 20;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

#define SKIP_OR_FAIL(why)                                     \
  do {                                                        \
    if (in_ci()) FAIL() << (why) << ", and CI must run this"; \
    GTEST_SKIP() << (why);                                    \
  } while (0)

#define REQUIRE_TRACKING()                                                              \
  do {                                                                                  \
    auto features = make_uffd_features();                                               \
    if (!features.ok())                                                                 \
      SKIP_OR_FAIL("no dirty-page tracking on this kernel: " + features.error().str()); \
  } while (0)

#define REQUIRE_ROOT_TRACKING(why)                            \
  do {                                                        \
    if (geteuid() != 0) SKIP_OR_FAIL("needs root (" why ")"); \
    REQUIRE_TRACKING();                                       \
  } while (0)

// An anonymous private mapping, optionally 2 MiB aligned, unmapped at the end.
struct Region {
  char* p = nullptr;
  std::size_t len = 0;
  void* raw = nullptr;
  std::size_t raw_len = 0;
  explicit Region(std::size_t n, bool huge_aligned = false) : len(n) {
    raw_len = n + (huge_aligned ? kHuge : 0);
    raw = mmap(nullptr, raw_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(raw, MAP_FAILED);
    auto a = reinterpret_cast<std::uint64_t>(raw);
    if (huge_aligned) a = (a + kHuge - 1) & ~(kHuge - 1);
    p = reinterpret_cast<char*>(a);
  }
  ~Region() { munmap(raw, raw_len); }
  std::uint64_t addr(std::uint64_t page = 0) const {
    return reinterpret_cast<std::uint64_t>(p) + page * kPage;
  }
  PageRange range() const { return {addr(), addr() + len}; }
  std::size_t pages() const { return len / kPage; }
};

std::vector<PageRange> pages_to_ranges(const std::set<std::uint64_t>& pages, std::uint64_t base) {
  std::vector<PageRange> v;
  for (std::uint64_t p : pages) v.push_back({base + p * kPage, base + (p + 1) * kPage});
  return coalesce(std::move(v));
}

std::string show(const std::vector<PageRange>& v, std::uint64_t base) {
  std::string s;
  for (const PageRange& r : v) {
    if (s.size() > 400) return s + " ...";
    s += fmt::format(" [{}-{})",
                     (static_cast<std::int64_t>(r.start) - static_cast<std::int64_t>(base)) / 4096,
                     (static_cast<std::int64_t>(r.end) - static_cast<std::int64_t>(base)) / 4096);
  }
  return s.empty() ? " (none)" : s;
}

std::uint64_t total_pages(const std::vector<PageRange>& v) {
  std::uint64_t n = 0;
  for (const PageRange& r : v) n += r.pages();
  return n;
}

#define EXPECT_REPORT(tracker, expected, base)                     \
  do {                                                             \
    auto got_ = (tracker).collect();                               \
    ASSERT_TRUE(got_.ok()) << got_.error().str();                  \
    auto want_ = (expected);                                       \
    EXPECT_EQ(*got_, want_) << "reported:" << show(*got_, base)    \
                            << "\nexpected:" << show(want_, base); \
  } while (0)

TEST(DirtyRanges, CoalesceAndSubtract) {
  EXPECT_EQ(coalesce({{8192, 12288}, {0, 4096}, {4096, 8192}, {20480, 24576}, {20480, 20480}}),
            (std::vector<PageRange>{{0, 12288}, {20480, 24576}}));
  EXPECT_EQ(coalesce({{0, 16384}, {4096, 8192}}), (std::vector<PageRange>{{0, 16384}}));
  std::vector<PageRange> a{{0, 40960}, {81920, 90112}};
  std::vector<PageRange> b{{4096, 8192}, {36864, 86016}};
  EXPECT_EQ(subtract(a, b), (std::vector<PageRange>{{0, 4096}, {8192, 36864}, {86016, 90112}}));
  EXPECT_EQ(subtract(a, {}), a);
  EXPECT_EQ(subtract({}, b), std::vector<PageRange>{});
  EXPECT_EQ(subtract({{4096, 8192}}, {{0, 16384}}), std::vector<PageRange>{});
}

TEST(DirtyTracker, RefusesBadRangesAndChangesNothing) {
  REQUIRE_TRACKING();
  Region r(1u << 20);
  auto t = DirtyTracker::start_self({{r.addr() + 1, r.addr() + kPage}});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().str().find("not page aligned"), std::string::npos) << t.error().str();
  auto e = DirtyTracker::start_self({{r.addr(kPage), r.addr()}});
  EXPECT_FALSE(e.ok());
  DirtyTrackerOptions small;
  small.max_tracked_bytes = 512u << 10;
  auto big = DirtyTracker::start_self({r.range()}, small);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().str().find("limit"), std::string::npos) << big.error().str();
  auto ok = DirtyTracker::start_self({r.range()});
  ASSERT_TRUE(ok.ok()) << ok.error().str();
  EXPECT_FALSE(ok->add({{r.addr() + 100, r.addr() + kPage}}).ok());
  EXPECT_EQ(ok->tracked(), std::vector<PageRange>{r.range()});
}

// The main property on our own memory: after start(), collect() returns exactly the pages
// written, however they were written, and nothing once nothing more was written.
TEST(DirtyTracker, OwnProcessReportsExactlyTheWrittenPages) {
  REQUIRE_TRACKING();
  Region r(64u << 20);
  std::memset(r.p, 0x5a, r.len);  // every page present: writes are to protected pages
  auto t = DirtyTracker::start_self({r.range()});
  ASSERT_TRUE(t.ok()) << t.error().str();
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());

  std::mt19937_64 rng(12345);
  UniqueFd self_mem(open("/proc/self/mem", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(self_mem.valid());
  for (int round = 0; round < 4; round++) {
    std::set<std::uint64_t> want;
    auto pick = [&] { return rng() % r.pages(); };
    // Plain stores: the first byte or a single byte at the very end of a page.
    for (int i = 0; i < 300; i++) {
      std::uint64_t pg = pick();
      r.p[pg * kPage + ((i & 1) ? kPage - 1 : 0)] ^= 1;
      want.insert(pg);
    }
    // An unaligned 8-byte store across a page boundary marks both pages.
    std::uint64_t cross = pick() % (r.pages() - 1);
    std::uint64_t v = rng();
    std::memcpy(r.p + (cross + 1) * kPage - 3, &v, 8);
    want.insert(cross);
    want.insert(cross + 1);
    // A second thread.
    std::vector<std::uint64_t> by_thread;
    for (int i = 0; i < 50; i++) by_thread.push_back(pick());
    std::thread th([&] {
      for (std::uint64_t pg : by_thread) r.p[pg * kPage + 2048] = static_cast<char>(pg);
    });
    th.join();
    want.insert(by_thread.begin(), by_thread.end());
    // The kernel writing into our memory: read(2) from a pipe (into two pages), and
    // process_vm_writev and /proc/self/mem (get_user_pages with FOLL_WRITE).
    int pp[2];
    ASSERT_EQ(pipe(pp), 0);
    char msg[100];
    std::memset(msg, 'r', sizeof(msg));
    ASSERT_EQ(write(pp[1], msg, sizeof(msg)), 100);
    std::uint64_t rd = pick() % (r.pages() - 1);
    ASSERT_EQ(read(pp[0], r.p + rd * kPage + 4050, 100), 100);
    close(pp[0]);
    close(pp[1]);
    want.insert(rd);
    want.insert(rd + 1);
    std::uint64_t pv = pick();
    iovec local{msg, 16}, remote{r.p + pv * kPage + 8, 16};
    ASSERT_EQ(process_vm_writev(getpid(), &local, 1, &remote, 1, 0), 16);
    want.insert(pv);
    std::uint64_t pm = pick();
    ASSERT_EQ(pwrite(self_mem.get(), msg, 1, static_cast<off_t>(r.addr(pm) + 77)), 1);
    want.insert(pm);

    EXPECT_REPORT(*t, pages_to_ranges(want, r.addr()), r.addr());
    EXPECT_EQ(t->last_stats().reported, want.size());
    // Nothing written since: nothing reported.
    EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
  }
  // Reading never counts as writing.
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < r.len; i += kPage)
    sum += static_cast<unsigned char>(*static_cast<volatile char*>(r.p + i));
  EXPECT_GT(sum, 0u);
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
}

// Pages that were never touched (no page table at all before start()) are tracked too.
TEST(DirtyTracker, UntouchedMemoryIsTracked) {
  REQUIRE_TRACKING();
  Region r(16u << 20);
  auto t = DirtyTracker::start_self({r.range()});
  ASSERT_TRUE(t.ok()) << t.error().str();
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
  r.p[5 * kPage] = 1;
  r.p[3000 * kPage + 4095] = 1;
  EXPECT_REPORT(*t, pages_to_ranges({5, 3000}, r.addr()), r.addr());
  // A read fault maps the zero page: not a write.
  volatile char c = r.p[77 * kPage];
  (void)c;
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
}

// A write to a protected transparent huge page splits it: the report is one 4 KiB page.
TEST(DirtyTracker, HugePagesAreTrackedPerPage) {
  REQUIRE_TRACKING();
  Region r(8u << 20, true);
  madvise(r.p, r.len, MADV_HUGEPAGE);
  std::memset(r.p, 1, r.len);
  auto t = DirtyTracker::start_self({r.range()});
  ASSERT_TRUE(t.ok()) << t.error().str();
  r.p[600 * kPage + 5] = 2;
  r.p[1500 * kPage + 4095] = 2;
  EXPECT_REPORT(*t, pages_to_ranges({600, 1500}, r.addr()), r.addr());
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
}

// MADV_DONTNEED makes pages read as zero without a write: they must be reported, also when a
// whole page table goes (a 2 MiB THP, a 2 MiB PTE table), with and without the hole scan.
class DirtyHoles : public ::testing::TestWithParam<DirtyTrackerOptions::HoleScan> {};

TEST_P(DirtyHoles, DroppedPagesAreReported) {
  REQUIRE_TRACKING();
  Region r(16u << 20, true);
  madvise(r.p, 4u << 20, MADV_HUGEPAGE);  // pages 0-1023: THPs where possible
  madvise(r.p + (4u << 20), 12u << 20, MADV_NOHUGEPAGE);
  std::memset(r.p, 7, r.len);
  DirtyTrackerOptions o;
  o.hole_scan = GetParam();
  auto t = DirtyTracker::start_self({r.range()}, o);
  ASSERT_TRUE(t.ok()) << t.error().str();
  ASSERT_EQ(madvise(r.p + 3 * kPage, kPage, MADV_DONTNEED), 0);  // one page
  ASSERT_EQ(madvise(r.p + kHuge, kHuge, MADV_DONTNEED), 0);      // a whole THP (512-1023)
  ASSERT_EQ(madvise(r.p + 4 * kHuge, kHuge, MADV_DONTNEED), 0);  // a whole PTE table (2048-2559)
  std::set<std::uint64_t> want{3};
  for (std::uint64_t p = 512; p < 1024; p++) want.insert(p);
  for (std::uint64_t p = 2048; p < 2560; p++) want.insert(p);
  EXPECT_REPORT(*t, pages_to_ranges(want, r.addr()), r.addr());
  EXPECT_EQ(r.p[600 * kPage], 0);
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
  // Written again after the drop: reported again, and only that page.
  r.p[2100 * kPage] = 1;
  EXPECT_REPORT(*t, pages_to_ranges({2100}, r.addr()), r.addr());
}

INSTANTIATE_TEST_SUITE_P(HoleScan, DirtyHoles,
                         ::testing::Values(DirtyTrackerOptions::HoleScan::kAuto,
                                           DirtyTrackerOptions::HoleScan::kAlways),
                         [](const ::testing::TestParamInfo<DirtyTrackerOptions::HoleScan>& p) {
                           return p.param == DirtyTrackerOptions::HoleScan::kAuto ? "Auto"
                                                                                  : "Always";
                         });

// A private file mapping whose written page is dropped goes back to the file's content: the
// kernel keeps such a page write-protected (it reads as clean), the tracker must report it.
TEST(DirtyTracker, PrivateFilePagesThatRevertAreReported) {
  REQUIRE_TRACKING();
  char path[] = "/tmp/osmo-dirty-file-XXXXXX";
  UniqueFd fd(mkstemp(path));
  ASSERT_TRUE(fd.valid());
  ScopeGuard rm([&] { unlink(path); });
  std::vector<char> content(64 * kPage, 'f');
  ASSERT_EQ(write(fd.get(), content.data(), content.size()), static_cast<ssize_t>(content.size()));
  UniqueFd mfd(memfd_create("osmo-dirty-test", MFD_CLOEXEC));
  ASSERT_EQ(write(mfd.get(), content.data(), content.size()), static_cast<ssize_t>(content.size()));
  for (int which = 0; which < 2; which++) {
    SCOPED_TRACE(which == 0 ? "regular file" : "memfd");
    auto* m = static_cast<char*>(mmap(nullptr, 64 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                                      which == 0 ? fd.get() : mfd.get(), 0));
    ASSERT_NE(m, MAP_FAILED);
    ScopeGuard unmap([&] { munmap(m, 64 * kPage); });
    auto base = reinterpret_cast<std::uint64_t>(m);
    m[1 * kPage] = 'a';  // written before start: no longer the file's
    volatile char sink = 0;
    for (int i = 0; i < 64; i++) sink = static_cast<char>(sink + m[i * kPage]);
    auto t = DirtyTracker::start_self({{base, base + 64 * kPage}});
    ASSERT_TRUE(t.ok()) << t.error().str();
    m[3 * kPage] = 'x';
    EXPECT_REPORT(*t, pages_to_ranges({3}, base), base);
    ASSERT_EQ(madvise(m + 3 * kPage, kPage, MADV_DONTNEED), 0);
    ASSERT_EQ(madvise(m + 1 * kPage, kPage, MADV_DONTNEED), 0);
    EXPECT_EQ(m[3 * kPage], 'f');
    EXPECT_EQ(m[1 * kPage], 'f');
    EXPECT_REPORT(*t, pages_to_ranges({1, 3}, base), base);
    EXPECT_EQ(t->last_stats().reverted, 2u);
    EXPECT_REPORT(*t, std::vector<PageRange>{}, base);
    m[10 * kPage] = 'y';  // written and dropped between two collects
    ASSERT_EQ(madvise(m + 10 * kPage, kPage, MADV_DONTNEED), 0);
    EXPECT_REPORT(*t, pages_to_ranges({10}, base), base);
  }
}

// Shared and read-only mappings are not tracked; memory mapped after start() is, once added.
TEST(DirtyTracker, TracksPrivateWritableMappingsAndWhatIsAdded) {
  REQUIRE_TRACKING();
  // One 32-page reservation: pages 0-7 private RW, 8-15 shared RW, 16-23 private RO, 24-31 free.
  auto* m =
      static_cast<char*>(mmap(nullptr, 32 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  ScopeGuard unmap([&] { munmap(m, 32 * kPage); });
  auto base = reinterpret_cast<std::uint64_t>(m);
  ASSERT_EQ(
      mmap(m, 8 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
      m);
  ASSERT_EQ(mmap(m + 8 * kPage, 8 * kPage, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            m + 8 * kPage);
  ASSERT_EQ(
      mmap(m + 16 * kPage, 8 * kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
      m + 16 * kPage);
  munmap(m + 24 * kPage, 8 * kPage);
  auto t = DirtyTracker::start_self({{base, base + 32 * kPage}});
  ASSERT_TRUE(t.ok()) << t.error().str();
  EXPECT_EQ(t->tracked(), (std::vector<PageRange>{{base, base + 8 * kPage}}));
  m[2 * kPage] = 1;
  m[9 * kPage] = 1;  // shared: not tracked
  EXPECT_REPORT(*t, pages_to_ranges({2}, base), base);

  // New memory: not reported until added, then tracked like the rest.
  ASSERT_EQ(mmap(m + 24 * kPage, 8 * kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            m + 24 * kPage);
  m[25 * kPage] = 1;
  EXPECT_REPORT(*t, std::vector<PageRange>{}, base);
  // A read-only mapping made writable is a layout change too.
  ASSERT_EQ(mprotect(m + 16 * kPage, 8 * kPage, PROT_READ | PROT_WRITE), 0);
  ASSERT_TRUE(t->add({{base + 16 * kPage, base + 32 * kPage}}).ok());
  EXPECT_EQ(t->tracked(), (std::vector<PageRange>{{base, base + 8 * kPage},
                                                  {base + 16 * kPage, base + 32 * kPage}}));
  EXPECT_REPORT(*t, std::vector<PageRange>{}, base);
  m[1 * kPage] = 2;
  m[17 * kPage] = 2;
  m[31 * kPage + 4095] = 2;
  EXPECT_REPORT(*t, pages_to_ranges({1, 17, 31}, base), base);
  // Adding what is already tracked changes nothing.
  ASSERT_TRUE(t->add({{base, base + 8 * kPage}}).ok());
  m[0] = 3;
  EXPECT_REPORT(*t, pages_to_ranges({0}, base), base);
  // Protection changes keep the tracking (mprotect preserves the protection bit).
  ASSERT_EQ(mprotect(m, 8 * kPage, PROT_READ), 0);
  ASSERT_EQ(mprotect(m, 8 * kPage, PROT_READ | PROT_WRITE), 0);
  EXPECT_REPORT(*t, std::vector<PageRange>{}, base);
  m[4 * kPage] = 4;
  EXPECT_REPORT(*t, pages_to_ranges({4}, base), base);
}

// munmap, mmap over a tracked range, mremap away: collect() keeps working, and a range whose
// mapping was replaced is reported in full until it is added again.
TEST(DirtyTracker, LayoutChangesDoNotBreakCollect) {
  REQUIRE_TRACKING();
  Region r(16u << 20);
  std::memset(r.p, 1, r.len);
  auto t = DirtyTracker::start_self({r.range()});
  ASSERT_TRUE(t.ok()) << t.error().str();
  ASSERT_EQ(munmap(r.p + 256 * kPage, 256 * kPage), 0);  // pages 256-511 gone
  r.p[10 * kPage] = 2;
  EXPECT_REPORT(*t, pages_to_ranges({10}, r.addr()), r.addr());
  // Something new where tracked memory was: all of it is reported, at every collect.
  ASSERT_EQ(mmap(r.p + 256 * kPage, 16 * kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            r.p + 256 * kPage);
  r.p[20 * kPage] = 2;
  std::set<std::uint64_t> want{20};
  for (std::uint64_t p = 256; p < 272; p++) want.insert(p);
  EXPECT_REPORT(*t, pages_to_ranges(want, r.addr()), r.addr());
  EXPECT_EQ(t->last_stats().untracked, 16u);
  want.erase(20);
  EXPECT_REPORT(*t, pages_to_ranges(want, r.addr()), r.addr());
  ASSERT_TRUE(t->add({{r.addr(256), r.addr(512)}}).ok());
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
  r.p[260 * kPage] = 3;
  EXPECT_REPORT(*t, pages_to_ranges({260}, r.addr()), r.addr());

  // mremap a tracked piece away (it loses its registration) and back over a tracked range.
  void* moved = mremap(r.p + 1024 * kPage, 64 * kPage, 64 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED,
                       r.p + 2048 * kPage);
  ASSERT_EQ(moved, r.p + 2048 * kPage);
  std::set<std::uint64_t> remapped;
  for (std::uint64_t p = 2048; p < 2112; p++) remapped.insert(p);
  EXPECT_REPORT(*t, pages_to_ranges(remapped, r.addr()), r.addr());
  ASSERT_TRUE(t->add({r.range()}).ok());
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
  r.p[2050 * kPage] = 4;
  r.p[3000 * kPage] = 4;
  EXPECT_REPORT(*t, pages_to_ranges({2050, 3000}, r.addr()), r.addr());
  // Everything unmapped: nothing to report, no error.
  Region keep_alive(kPage);
  ASSERT_EQ(munmap(r.p, r.len), 0);
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
  r.raw =
      mmap(r.p, r.len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);  // for ~Region
}

// fork makes every page copy-on-write in the parent; its own later writes are still reported
// exactly, and nothing else is.
TEST(DirtyTracker, ForkKeepsTheParentsTracking) {
  REQUIRE_TRACKING();
  Region r(4u << 20);
  std::memset(r.p, 1, r.len);
  auto t = DirtyTracker::start_self({r.range()});
  ASSERT_TRUE(t.ok()) << t.error().str();
  r.p[7 * kPage] = 2;  // written before the fork, not collected yet
  pid_t pid = fork();
  if (pid == 0) {
    r.p[9 * kPage] = 3;  // the child's copy: not ours
    _exit(0);
  }
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  r.p[100 * kPage + 4095] = 4;
  EXPECT_REPORT(*t, pages_to_ranges({7, 100}, r.addr()), r.addr());
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
  r.p[7 * kPage] = 5;
  EXPECT_REPORT(*t, pages_to_ranges({7}, r.addr()), r.addr());
}

// A mapping that grows in place (mremap, as realloc does; the stack) is a layout change: once
// the caller adds the new part, writes there are reported exactly like the rest.
TEST(DirtyTracker, GrowthInPlaceIsTrackedOnceAdded) {
  REQUIRE_TRACKING();
  Region reserve(64 * kPage);  // room to grow into
  ASSERT_EQ(munmap(reserve.p + 16 * kPage, 48 * kPage), 0);
  char* m = reserve.p;
  std::memset(m, 1, 16 * kPage);
  auto base = reinterpret_cast<std::uint64_t>(m);
  auto t = DirtyTracker::start_self({{base, base + 16 * kPage}});
  ASSERT_TRUE(t.ok()) << t.error().str();
  ASSERT_EQ(mremap(m, 16 * kPage, 64 * kPage, 0), m);
  auto before_add = t->collect();
  ASSERT_TRUE(before_add.ok()) << before_add.error().str();
  ASSERT_TRUE(t->add({{base + 16 * kPage, base + 64 * kPage}}).ok());
  EXPECT_EQ(t->tracked(), (std::vector<PageRange>{{base, base + 64 * kPage}}));
  m[3 * kPage] = 2;
  m[40 * kPage] = 2;
  m[63 * kPage + 4095] = 2;
  EXPECT_REPORT(*t, pages_to_ranges({3, 40, 63}, base), base);
  EXPECT_REPORT(*t, std::vector<PageRange>{}, base);
}

// A page made a guard page (MADV_GUARD_INSTALL) lost its content: reported once, whether
// installed before start() or while tracked, and named by guard_pages() for the copier, whose
// read fails with EFAULT. Never again afterwards, and the guard still guards after release.
TEST(DirtyTracker, GuardPagesAreReportedOnceAndNamed) {
  REQUIRE_TRACKING();
  constexpr int kMadvGuardInstall = 102;  // Linux 6.13
  Region r(64 * kPage);
  std::memset(r.p, 1, r.len);
  if (madvise(r.p + 4 * kPage, 2 * kPage, kMadvGuardInstall) != 0)
    SKIP_OR_FAIL(std::string("no guard regions on this kernel: ") + std::strerror(errno));
  auto support = dirty_tracking_support();
  ASSERT_TRUE(support.ok());
  if (!support->guard_category)
    SKIP_OR_FAIL("PAGEMAP_SCAN does not know PAGE_IS_GUARD on this kernel");
  std::optional<DirtyTracker> t;
  {
    auto started = DirtyTracker::start_self({r.range()});
    ASSERT_TRUE(started.ok()) << started.error().str();
    t.emplace(std::move(*started));
  }
  EXPECT_REPORT(*t, pages_to_ranges({4, 5}, r.addr()), r.addr());
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
  ASSERT_EQ(madvise(r.p + 20 * kPage, kPage, kMadvGuardInstall), 0);
  r.p[30 * kPage] = 2;
  EXPECT_REPORT(*t, pages_to_ranges({20, 30}, r.addr()), r.addr());
  auto guards = t->guard_pages({r.range()});
  ASSERT_TRUE(guards.ok()) << guards.error().str();
  EXPECT_EQ(*guards, pages_to_ranges({4, 5, 20}, r.addr()));
  char b[8];
  iovec local{b, 8}, remote{r.p + 20 * kPage, 8};
  EXPECT_EQ(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), -1);
  EXPECT_EQ(errno, EFAULT);
  EXPECT_REPORT(*t, std::vector<PageRange>{}, r.addr());
  t.reset();
  EXPECT_EQ(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), -1)
      << "the guard must still guard after release";
  r.p[21 * kPage] = 3;
}

// Droppable memory (MAP_DROPPABLE, which userfaultfd refuses and maps shows as ordinary private
// memory) is left out instead of failing start().
TEST(DirtyTracker, DroppableMemoryIsSkipped) {
  REQUIRE_TRACKING();
  constexpr int kMapDroppable = 0x08;  // Linux 6.11
  Region r(16 * kPage);
  void* d = mmap(r.p + 8 * kPage, 8 * kPage, PROT_READ | PROT_WRITE,
                 MAP_ANONYMOUS | MAP_FIXED | kMapDroppable, -1, 0);
  if (d == MAP_FAILED)
    SKIP_OR_FAIL(std::string("no MAP_DROPPABLE on this kernel: ") + std::strerror(errno));
  std::memset(r.p, 1, r.len);
  auto t = DirtyTracker::start_self({r.range()});
  ASSERT_TRUE(t.ok()) << t.error().str();
  EXPECT_EQ(t->tracked(), (std::vector<PageRange>{{r.addr(), r.addr(8)}}));
  r.p[3 * kPage] = 2;
  r.p[9 * kPage] = 2;
  EXPECT_REPORT(*t, pages_to_ranges({3}, r.addr()), r.addr());
}

// hugetlb memory is refused: the kernel keeps a huge page emptied by MADV_DONTNEED marked clean.
TEST(DirtyTracker, HugetlbIsRefused) {
  REQUIRE_ROOT_TRACKING("to reserve a huge page");
  // One huge page must be reserved; as root we reserve it for the test and put the count back.
  auto before = read_text_file("/proc/sys/vm/nr_hugepages");
  ASSERT_TRUE(before.ok());
  long had = std::atol(before->c_str());
  auto set_count = [](long n) {
    UniqueFd f(open("/proc/sys/vm/nr_hugepages", O_WRONLY | O_CLOEXEC));
    std::string v = std::to_string(n);
    return f.valid() && write(f.get(), v.data(), v.size()) == static_cast<ssize_t>(v.size());
  };
  if (had == 0) {
    ASSERT_TRUE(set_count(1));
  }
  ScopeGuard restore([&] {
    if (had == 0) set_count(0);
  });
  void* h = mmap(nullptr, kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
                 -1, 0);
  if (h == MAP_FAILED) SKIP_OR_FAIL(std::string("no huge page to be had: ") + std::strerror(errno));
  ScopeGuard unmap([&] { munmap(h, kHuge); });
  std::memset(h, 1, kHuge);
  auto base = reinterpret_cast<std::uint64_t>(h);
  auto t = DirtyTracker::start_self({{base, base + kHuge}});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().str().find("hugetlb"), std::string::npos) << t.error().str();
  // Nothing is left registered: another tracker can take the same memory's neighbourhood, and
  // the page is writable as before.
  static_cast<char*>(h)[5] = 2;
}

// --- Another process -------------------------------------------------------------------------

// A child with `pages` pages of anonymous memory (all present) that writes pages on command:
// each command is a page index (the top bit set: write the page's last byte instead of its
// first); it answers every batch (terminated by ~0) with one byte.
struct WriterChild {
  pid_t pid = -1;
  std::uint64_t addr = 0;
  UniqueFd cmd, ack;
  ~WriterChild() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  void write_pages(const std::vector<std::uint64_t>& pages) {
    std::vector<std::uint64_t> msg = pages;
    msg.push_back(~0ull);
    ASSERT_EQ(write(cmd.get(), msg.data(), msg.size() * 8), static_cast<ssize_t>(msg.size() * 8));
    char b;
    ASSERT_EQ(read(ack.get(), &b, 1), 1);
  }
};

std::unique_ptr<WriterChild> spawn_writer(std::size_t pages) {
  int c[2], a[2], ready[2];
  EXPECT_EQ(pipe(c), 0);
  EXPECT_EQ(pipe(a), 0);
  EXPECT_EQ(pipe(ready), 0);
  auto w = std::make_unique<WriterChild>();
  w->pid = fork();
  if (w->pid == 0) {
    auto* m = static_cast<char*>(
        mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    std::memset(m, 0x11, pages * kPage);
    auto addr = reinterpret_cast<std::uint64_t>(m);
    (void)!write(ready[1], &addr, 8);
    std::uint64_t v;
    char counter = 0;
    for (;;) {
      if (read(c[0], &v, 8) != 8) _exit(0);
      if (v == ~0ull) {
        (void)!write(a[1], "k", 1);
        continue;
      }
      bool last = (v >> 63) != 0;
      std::uint64_t pg = v & ~(1ull << 63);
      m[pg * kPage + (last ? kPage - 1 : 0)] = ++counter;
    }
  }
  close(c[0]);
  close(a[1]);
  close(ready[1]);
  EXPECT_EQ(read(ready[0], &w->addr, 8), 8);
  close(ready[0]);
  w->cmd.reset(c[1]);
  w->ack.reset(a[0]);
  return w;
}

Result<std::uint64_t> vdso_syscall_insn(Tracee& t, pid_t pid) {
  OSMO_ASSIGN_OR_RETURN(std::vector<MapsEntry> maps, read_maps(pid));
  for (const MapsEntry& e : maps) {
    if (e.name != "[vdso]") continue;
    std::vector<std::uint8_t> b(e.end - e.start);
    OSMO_TRY(t.read_mem(e.start, b.data(), b.size()));
    for (std::size_t i = 0; i + 1 < b.size(); i++)
      if (b[i] == 0x0f && b[i + 1] == 0x05) return e.start + i;
  }
  return make_error("no syscall instruction in [vdso] of pid {}", pid);
}

bool has_userfaultfd_fd(pid_t pid) {
  auto fds = list_fds(pid);
  if (!fds.ok()) return false;
  for (int fd : *fds) {
    auto l = read_link(fmt::format("/proc/{}/fd/{}", pid, fd));
    if (l.ok() && l->find("userfaultfd") != std::string::npos) return true;
  }
  return false;
}

// The engine's path: seize and stop the process, create its userfaultfd by injection, start
// tracking while it is stopped, let it go; the pages it then writes on command are reported
// exactly. Releasing the tracker leaves no page protected.
TEST(DirtyTracker, AnotherProcessByInjection) {
  REQUIRE_ROOT_TRACKING("ptrace, pidfd_getfd of a child");
  auto w = spawn_writer(16384);  // 64 MiB
  PageRange range{w->addr, w->addr + 16384 * kPage};
  std::optional<DirtyTracker> tracker;
  {
    std::vector<siginfo_t> stolen;
    auto t = Tracee::seize_and_stop(w->pid, Tracee::OnRelease::kDetach, false, &stolen);
    ASSERT_TRUE(t.ok()) << t.error().str();
    auto regs = t->get_regs();
    ASSERT_TRUE(regs.ok()) << regs.error().str();
    auto mask = t->get_sigmask();
    ASSERT_TRUE(mask.ok());
    auto gate = vdso_syscall_insn(*t, w->pid);
    ASSERT_TRUE(gate.ok()) << gate.error().str();
    t->set_gate(*gate, GateKind::kSyscallStops);
    ASSERT_TRUE(t->set_sigmask(~0ull).ok());
    int injected = 0;
    auto uffd = open_tracking_uffd(w->pid, [&](long nr, const std::array<std::uint64_t, 6>& a) {
      injected++;
      return t->syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    });
    ASSERT_TRUE(uffd.ok()) << uffd.error().str();
    EXPECT_EQ(injected, 2);  // userfaultfd, close
    EXPECT_FALSE(has_userfaultfd_fd(w->pid))
        << "the process must not keep a userfaultfd descriptor";
    auto started = DirtyTracker::start(w->pid, std::move(*uffd), {range});
    ASSERT_TRUE(started.ok()) << started.error().str();
    tracker.emplace(std::move(*started));
    ASSERT_TRUE(t->set_regs(with_syscall_restart(*regs)).ok());
    ASSERT_TRUE(t->set_sigmask(*mask).ok());
    ASSERT_TRUE(t->detach().ok());
  }
  EXPECT_REPORT(*tracker, std::vector<PageRange>{}, w->addr);
  // Reading the whole memory from outside (as the copy of each round does) is not a write.
  std::vector<char> copy(16384 * kPage);
  iovec local{copy.data(), copy.size()}, remote{reinterpret_cast<void*>(w->addr), copy.size()};
  ASSERT_EQ(process_vm_readv(w->pid, &local, 1, &remote, 1, 0), static_cast<ssize_t>(copy.size()));
  EXPECT_REPORT(*tracker, std::vector<PageRange>{}, w->addr);
  std::mt19937_64 rng(7);
  for (int round = 0; round < 5; round++) {
    std::set<std::uint64_t> want;
    std::vector<std::uint64_t> cmds;
    for (int i = 0; i < 200 * (round + 1); i++) {
      std::uint64_t pg = rng() % 16384;
      want.insert(pg);
      cmds.push_back(pg | ((i & 1) ? (1ull << 63) : 0));
    }
    w->write_pages(cmds);
    EXPECT_REPORT(*tracker, pages_to_ranges(want, w->addr), w->addr);
  }
  EXPECT_REPORT(*tracker, std::vector<PageRange>{}, w->addr);

  // Released: no page of the child is write-protected any more (pagemap bit 57, PM_UFFD_WP).
  tracker.reset();
  UniqueFd pm(open(fmt::format("/proc/{}/pagemap", w->pid).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(pm.valid());
  std::vector<std::uint64_t> entries(16384);
  ASSERT_EQ(
      pread(pm.get(), entries.data(), entries.size() * 8, static_cast<off_t>(w->addr / kPage * 8)),
      static_cast<ssize_t>(entries.size() * 8));
  std::size_t protected_pages = 0;
  for (std::uint64_t e : entries) protected_pages += (e >> 57) & 1;
  EXPECT_EQ(protected_pages, 0u);
  w->write_pages({1, 2, 3});  // and it still runs
}

// The child creates the userfaultfd itself and hands it over a socketpair; the child dies while
// tracked: collect() must not fail silently or crash, and must not report pages it never saw.
Result<UniqueFd> receive_fd(int sock) {
  char data;
  iovec iov{&data, 1};
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = buf;
  msg.msg_controllen = sizeof(buf);
  if (recvmsg(sock, &msg, 0) != 1) return errno_error("recvmsg");
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) return make_error("no fd received");
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return UniqueFd(fd);
}

void send_fd(int sock, int fd) {
  char data = 'u';
  iovec iov{&data, 1};
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = buf;
  msg.msg_controllen = sizeof(buf);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  (void)!sendmsg(sock, &msg, 0);
}

TEST(DirtyTracker, ProcessThatDiesWhileTracked) {
  REQUIRE_ROOT_TRACKING("ptrace, pidfd_getfd of a child");
  int sp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(sp[0]);
    auto* m = static_cast<char*>(
        mmap(nullptr, 256 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    std::memset(m, 1, 256 * kPage);
    int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
    send_fd(sp[1], uffd);
    auto a = reinterpret_cast<std::uint64_t>(m);
    (void)!write(sp[1], &a, 8);
    char b;
    if (read(sp[1], &b, 1) == 1) m[5 * kPage] = 2;  // one write, then wait to be killed
    pause();
    _exit(0);
  }
  close(sp[1]);
  UniqueFd sock(sp[0]);
  auto uffd = receive_fd(sock.get());
  ASSERT_TRUE(uffd.ok()) << uffd.error().str();
  ASSERT_TRUE(negotiate_tracking_features(uffd->get()).ok());
  std::uint64_t base = 0;
  ASSERT_EQ(read(sock.get(), &base, 8), 8);
  auto t = DirtyTracker::start(pid, std::move(*uffd), {{base, base + 256 * kPage}});
  ASSERT_TRUE(t.ok()) << t.error().str();
  ASSERT_EQ(write(sock.get(), "w", 1), 1);
  for (int i = 0; i < 1000 && t->last_stats().reported == 0; i++) {
    auto got = t->collect();
    ASSERT_TRUE(got.ok()) << got.error().str();
    if (!got->empty()) {
      EXPECT_EQ(*got, pages_to_ranges({5}, base));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(t->last_stats().reported, 1u);
  kill(pid, SIGKILL);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  // The mm is gone: an error that says so, never a crash or an empty report.
  auto after = t->collect();
  ASSERT_FALSE(after.ok()) << "reported" << show(*after, base);
  EXPECT_EQ(after.error().code, ESRCH) << after.error().str();
  EXPECT_FALSE(t->add({{base, base + kPage}}).ok());
}

// exec replaces the memory: the tracker must say so instead of reporting nothing forever.
TEST(DirtyTracker, ExecIsNoticed) {
  REQUIRE_ROOT_TRACKING("ptrace, pidfd_getfd of a child");
  int sp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(sp[0]);
    auto* m = static_cast<char*>(
        mmap(nullptr, 256 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    std::memset(m, 1, 256 * kPage);
    int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
    send_fd(sp[1], uffd);
    close(uffd);
    auto a = reinterpret_cast<std::uint64_t>(m);
    (void)!write(sp[1], &a, 8);
    char b;
    if (read(sp[1], &b, 1) == 1) execl("/bin/sleep", "sleep", "20", nullptr);
    _exit(1);
  }
  close(sp[1]);
  UniqueFd sock(sp[0]);
  ScopeGuard reap([&] {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  });
  auto uffd = receive_fd(sock.get());
  ASSERT_TRUE(uffd.ok()) << uffd.error().str();
  ASSERT_TRUE(negotiate_tracking_features(uffd->get()).ok());
  std::uint64_t base = 0;
  ASSERT_EQ(read(sock.get(), &base, 8), 8);
  auto t = DirtyTracker::start(pid, std::move(*uffd), {{base, base + 256 * kPage}});
  ASSERT_TRUE(t.ok()) << t.error().str();
  EXPECT_REPORT(*t, std::vector<PageRange>{}, base);
  ASSERT_EQ(write(sock.get(), "x", 1), 1);
  for (int i = 0; i < 2000; i++) {
    auto comm = read_text_file(fmt::format("/proc/{}/comm", pid));
    if (comm.ok() && comm->rfind("sleep", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto after = t->collect();
  ASSERT_FALSE(after.ok()) << "reported" << show(*after, base);
  EXPECT_EQ(after.error().code, ESRCH) << after.error().str();
  EXPECT_NE(after.error().str().find("exec"), std::string::npos) << after.error().str();
}

// --- Stress ----------------------------------------------------------------------------------

// A child writes pseudo-random pages of 32 MiB for about 2 s (single bytes, 8-byte words, last
// bytes of pages, whole pages), alternately at full speed and slowed down, counting every store
// first in a shared counter. The parent collects every 50 ms and copies what was reported into
// its shadow; every 4 rounds, and at the end, it stops the child, collects, copies, and compares
// the child's whole memory with the shadow: any difference is a write that was not reported.
TEST(DirtyTracker, StressChildWritingWhileCollecting) {
  REQUIRE_ROOT_TRACKING("ptrace, pidfd_getfd of a child");
  constexpr std::size_t kPages = 8192;  // 32 MiB
  auto* shared = static_cast<std::atomic<std::uint64_t>*>(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(static_cast<void*>(shared), MAP_FAILED);
  ScopeGuard unmap_shared([&] { munmap(shared, kPage); });
  std::atomic<std::uint64_t>& writes = shared[0];
  std::atomic<std::uint64_t>& stop = shared[1];
  std::atomic<std::uint64_t>& addr_out = shared[2];
  std::atomic<std::uint64_t>& done = shared[3];
  done = 0;
  writes = 0;
  stop = 0;
  addr_out = 0;
  int sp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(sp[0]);
    auto* m = static_cast<std::uint8_t*>(
        mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    std::memset(m, 0, kPages * kPage);
    int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
    send_fd(sp[1], uffd);
    close(uffd);
    addr_out = reinterpret_cast<std::uint64_t>(m);
    char go;
    if (read(sp[1], &go, 1) != 1) _exit(2);
    std::mt19937_64 rng(99);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);  // hard bound
    std::uint64_t n = 0;
    while (stop.load(std::memory_order_relaxed) == 0) {
      std::uint64_t x = rng();
      std::uint64_t pg = x % kPages;
      std::uint8_t* p = m + pg * kPage;
      writes.fetch_add(1, std::memory_order_seq_cst);  // counted before the store
      switch ((x >> 20) & 7) {
        case 0:
          std::memset(p, static_cast<int>(x >> 32), kPage);
          break;
        case 1:
          p[kPage - 1] = static_cast<std::uint8_t>(x >> 40);
          break;
        case 2:
          p[(x >> 24) % kPage] = static_cast<std::uint8_t>(x >> 48);
          break;
        default: {
          std::uint64_t v = x * 0x9e3779b97f4a7c15ull;
          std::memcpy(p + ((x >> 24) % (kPage / 8)) * 8, &v, 8);
        }
      }
      if ((++n & 63) == 0) {
        auto now_t = std::chrono::steady_clock::now();
        if (now_t > deadline) break;
        // Every other quarter second the writer slows down to ~50k stores/s, so that a round
        // sees a partial dirty set (at full speed every page is rewritten in every round).
        if ((std::chrono::duration_cast<std::chrono::milliseconds>(now_t.time_since_epoch())
                 .count() /
             250) %
            2) {
          timespec ts{0, 1'000'000};
          nanosleep(&ts, nullptr);
        }
      }
    }
    done = 1;
    // Stay until the parent has compared our memory a last time (it closes the socket).
    while (read(sp[1], &go, 1) > 0) {
    }
    _exit(0);
  }
  close(sp[1]);
  UniqueFd sock(sp[0]);
  ScopeGuard reap([&] {
    if (pid <= 0) return;
    stop = 1;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  });
  auto uffd = receive_fd(sock.get());
  ASSERT_TRUE(uffd.ok()) << uffd.error().str();
  ASSERT_TRUE(negotiate_tracking_features(uffd->get()).ok());
  while (addr_out.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::uint64_t base = addr_out.load();
  auto t = DirtyTracker::start(pid, std::move(*uffd), {{base, base + kPages * kPage}});
  ASSERT_TRUE(t.ok()) << t.error().str();

  std::vector<std::uint8_t> shadow(kPages * kPage), now(kPages * kPage);
  auto read_child = [&](std::uint64_t start, std::uint64_t len, std::uint8_t* into) {
    iovec local{into, len}, remote{reinterpret_cast<void*>(start), len};
    return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
  };
  ASSERT_TRUE(read_child(base, kPages * kPage, shadow.data()));  // the full copy after start()
  ASSERT_EQ(write(sock.get(), "g", 1), 1);

  auto copy_reported = [&](const std::vector<PageRange>& got) {
    for (const PageRange& r : got) {
      ASSERT_GE(r.start, base);
      ASSERT_LE(r.end, base + kPages * kPage);
      ASSERT_TRUE(read_child(r.start, r.end - r.start, shadow.data() + (r.start - base)));
    }
  };
  auto missed_pages = [&]() {
    EXPECT_TRUE(read_child(base, kPages * kPage, now.data()));
    std::vector<std::uint64_t> missed;
    for (std::size_t p = 0; p < kPages; p++)
      if (std::memcmp(now.data() + p * kPage, shadow.data() + p * kPage, kPage) != 0)
        missed.push_back(p);
    return missed;
  };
  auto stop_child = [&] {
    kill(pid, SIGSTOP);
    int st = 0;
    waitpid(pid, &st, WUNTRACED);
    return WIFSTOPPED(st);
  };

  std::uint64_t before_prev = writes.load();  // the write count before the previous collect
  std::uint64_t reported_total = 0, checks = 0, rounds = 0;
  auto t_end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < t_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    bool check = ++rounds % 4 == 0;
    if (check) {
      ASSERT_TRUE(stop_child());
    }
    std::uint64_t before = writes.load();
    auto got = t->collect();
    ASSERT_TRUE(got.ok()) << got.error().str();
    std::uint64_t after = writes.load();
    copy_reported(*got);
    // Bound on false positives: every reported page was written (a store counts at most one
    // page here) after the previous collect began and before this one ended.
    std::uint64_t n = total_pages(*got);
    reported_total += n;
    EXPECT_LE(n, after - before_prev + 1) << "round " << rounds;
    before_prev = before;
    if (check) {
      auto missed = missed_pages();
      EXPECT_TRUE(missed.empty()) << "round " << rounds << ": " << missed.size()
                                  << " changed pages not reported, first " << missed.front();
      checks++;
      kill(pid, SIGCONT);
    }
  }
  // The end of a pre-copy: the writer stops, a last collect, and nothing may differ.
  stop = 1;
  while (done.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto last = t->collect();
  ASSERT_TRUE(last.ok()) << last.error().str();
  copy_reported(*last);
  auto missed = missed_pages();
  EXPECT_TRUE(missed.empty()) << missed.size() << " changed pages not reported at the end";
  sock.reset();
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "writer status " << st;
  pid = -1;
  std::printf("[ stress   ] %llu rounds, %llu stopped checks, %llu writes, %llu pages reported\n",
              static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(checks),
              static_cast<unsigned long long>(writes.load()),
              static_cast<unsigned long long>(reported_total));
  SUCCEED() << rounds << " rounds, " << checks << " stopped checks, " << writes.load()
            << " writes, " << reported_total << " pages reported";
  EXPECT_GT(rounds, 10u);
  EXPECT_GT(writes.load(), 10000u) << "the child barely ran";
}

}  // namespace
}  // namespace osmo::ckpt
