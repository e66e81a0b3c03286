// SPDX-License-Identifier: GPL-2.0-or-later
// Cost of finding the pages a process wrote (src/ckpt/dirty_pages.hpp), the step that iterative
// pre-copy repeats every round. For S bytes of anonymous memory (all present) and 0 %, 1 % and
// 10 % of its pages written since the last look, it prints the time of DirtyTracker::collect()
// (which also write-protects those pages again) next to two baselines measured in the same run
// on the same range: a plain read of /proc/self/pagemap (the page-table walk every other method
// needs at least, and no written bit without soft-dirty) and a memcmp of the range against a
// shadow copy (finding changed pages by content, what a tracker-less pre-copy would have to do,
// and in another process it would first have to copy the memory out). It also prints the cost of
// start() (register + protect), of a first write to a protected page (the price the tracked job
// pays once per page and round) next to a write to an unprotected page, and of releasing.
// Usage: dirty_bench [--hole-scan] [--repeat N] [MiB...]   (default 64 1024 4096, median of 5
// collects per cell; --hole-scan forces the slower scan for kernels without the PMD-hole fix).
// A size needs 2x its memory + 1 GiB available for the memcmp baseline, 1x + 1 GiB without it.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "ckpt/dirty_pages.hpp"
#include "ckpt/proc.hpp"

using namespace osmo;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kPage = 4096;

double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::uint64_t mem_available() {
  auto t = ckpt::read_text_file("/proc/meminfo");
  if (!t.ok()) return 0;
  auto p = t->find("MemAvailable:");
  return p == std::string::npos ? 0 : std::stoull(t->substr(p + 13)) * 1024;
}

struct Mapping {
  char* p = nullptr;
  std::size_t len = 0;
  explicit Mapping(std::size_t n) : len(n) {
    void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p = m == MAP_FAILED ? nullptr : static_cast<char*>(m);
  }
  ~Mapping() {
    if (p != nullptr) munmap(p, len);
  }
};

// The k-th of n pages written in a round: a stride that visits every page once (n is a power of
// two, the stride odd), so the written pages are spread over the range as in a real job.
std::size_t nth_page(std::size_t k, std::size_t pages) {
  return (k * 7919) % pages;
}

int run(std::size_t mib, int repeat, bool hole_scan) {
  std::size_t len = mib << 20, pages = len / kPage;
  std::uint64_t avail = mem_available();
  bool with_shadow = avail >= 2 * len + (1ull << 30);
  if (!with_shadow && avail < len + (1ull << 30)) {
    std::printf("%6zu MiB  skipped: needs ~%zu MiB free, %llu MiB available\n", mib, mib + 1024,
                static_cast<unsigned long long>(avail >> 20));
    return 0;
  }
  Mapping mem(len), shadow(with_shadow ? len : 0);
  if (mem.p == nullptr || (with_shadow && shadow.p == nullptr)) {
    std::fprintf(stderr, "mmap of %zu MiB failed\n", mib);
    return 1;
  }
  std::memset(mem.p, 0x5a, len);
  if (with_shadow) std::memcpy(shadow.p, mem.p, len);
  UniqueFd pagemap(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  std::vector<std::uint64_t> entries(pages);

  ckpt::DirtyTrackerOptions o;
  if (hole_scan) o.hole_scan = ckpt::DirtyTrackerOptions::HoleScan::kAlways;
  auto base = reinterpret_cast<std::uint64_t>(mem.p);
  auto t0 = Clock::now();
  auto started = ckpt::DirtyTracker::start_self({{base, base + len}}, o);
  auto t1 = Clock::now();
  if (!started.ok()) {
    std::fprintf(stderr, "start failed: %s\n", started.error().str().c_str());
    return 1;
  }
  std::optional<ckpt::DirtyTracker> t(std::move(*started));
  std::printf("%6zu MiB  start (register + write-protect) %.2f ms%s\n", mib, ms(t0, t1),
              t->hole_scan() ? "  [hole scan on]" : "");
  int rc = 0;
  char value = 0;
  for (int pct : {0, 1, 10}) {
    std::size_t n = pages * static_cast<std::size_t>(pct) / 100;
    std::vector<double> c_ms, pm_ms, cmp_ms, w_us, w0_us;
    std::uint64_t reported = 0;
    for (int rep = 0; rep < repeat; rep++) {
      value++;
      auto w0 = Clock::now();
      for (std::size_t k = 0; k < n; k++) mem.p[nth_page(k, pages) * kPage + (k % kPage)] = value;
      auto w1 = Clock::now();
      if (n > 0) w_us.push_back(ms(w0, w1) * 1000 / static_cast<double>(n));
      if (with_shadow && n > 0) {  // the same stores into memory nobody protects
        auto u0 = Clock::now();
        for (std::size_t k = 0; k < n; k++)
          shadow.p[nth_page(k, pages) * kPage + (k % kPage) + 1] ^= 1;
        w0_us.push_back(ms(u0, Clock::now()) * 1000 / static_cast<double>(n));
        for (std::size_t k = 0; k < n; k++)
          shadow.p[nth_page(k, pages) * kPage + (k % kPage) + 1] ^= 1;
      }
      auto c0 = Clock::now();
      auto got = t->collect();
      auto c1 = Clock::now();
      if (!got.ok()) {
        std::fprintf(stderr, "collect failed: %s\n", got.error().str().c_str());
        return 1;
      }
      c_ms.push_back(ms(c0, c1));
      reported = t->last_stats().reported;
      if (reported != n) {
        std::fprintf(stderr, "%zu MiB %d%%: collect reported %llu pages, %zu were written\n", mib,
                     pct, static_cast<unsigned long long>(reported), n);
        rc = 1;
      }
      auto p0 = Clock::now();
      ssize_t got_bytes =
          pread(pagemap.get(), entries.data(), pages * 8, static_cast<off_t>(base / kPage * 8));
      pm_ms.push_back(ms(p0, Clock::now()));
      if (got_bytes != static_cast<ssize_t>(pages * 8)) {
        std::fprintf(stderr, "pagemap read failed\n");
        return 1;
      }
      if (with_shadow) {
        auto m0 = Clock::now();
        std::size_t changed = 0;
        for (std::size_t pg = 0; pg < pages; pg++) {
          char* a = mem.p + pg * kPage;
          char* b = shadow.p + pg * kPage;
          if (std::memcmp(a, b, kPage) != 0) {
            std::memcpy(b, a, kPage);
            changed++;
          }
        }
        cmp_ms.push_back(ms(m0, Clock::now()));
        if (changed != n) {
          std::fprintf(stderr, "%zu MiB %d%%: memcmp found %zu changed pages, %zu were written\n",
                       mib, pct, changed, n);
          rc = 1;
        }
      }
    }
    double c = median(c_ms), pm = median(pm_ms), cmp = median(cmp_ms);
    std::printf(
        "%6zu MiB  %3d%% written (%7zu pages)  collect %8.3f ms  | pagemap read %7.2f ms  x%-6.3f",
        mib, pct, n, c, pm, c / pm);
    if (with_shadow)
      std::printf("| memcmp %8.2f ms  x%-7.4f", cmp, c / cmp);
    else
      std::printf("| memcmp (no room)          ");
    if (n > 0) {
      std::printf("| write %.2f us/page", median(w_us));
      if (with_shadow) std::printf(" (unprotected %.3f)", median(w0_us));
    }
    std::printf("\n");
  }
  auto r0 = Clock::now();
  t.reset();
  std::printf("%6zu MiB  release (unregister) %.2f ms\n", mib, ms(r0, Clock::now()));
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes;
  int repeat = 5;
  bool hole_scan = false;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--hole-scan") == 0)
      hole_scan = true;
    else if (std::strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
      repeat = std::max(1, std::atoi(argv[++i]));
    else
      sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  }
  if (sizes.empty()) sizes = {64, 1024, 4096};
  auto support = ckpt::make_uffd_features();
  if (!support.ok()) {
    std::fprintf(stderr, "dirty_bench: %s\n", support.error().str().c_str());
    return 77;
  }
  auto s = ckpt::dirty_tracking_support();
  std::printf("dirty-page tracking: PAGEMAP_SCAN, userfaultfd features %#llx, PMD holes %s\n",
              static_cast<unsigned long long>(s->uffd_features),
              s->pmd_holes_reported ? "reported by the kernel" : "need the hole scan");
  int rc = 0;
  for (std::size_t mib : sizes) rc |= run(mib, repeat, hole_scan);
  return rc;
}
