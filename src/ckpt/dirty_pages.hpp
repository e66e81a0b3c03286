// SPDX-License-Identifier: GPL-2.0-or-later
// Which pages of a running process were written: the tracker iterative pre-copy migration uses
// between its rounds (docs/engine.md, "Tracking written pages (pre-copy)").
//
// This kernel has no soft-dirty bits, so writes are tracked with userfaultfd write protection in
// asynchronous mode (UFFD_FEATURE_WP_ASYNC): every tracked page is write-protected; a write to a
// protected page is resolved by the kernel on the spot (no message, no waiting thread) and leaves
// the page unprotected. The PAGEMAP_SCAN ioctl on /proc/PID/pagemap then reports the unprotected
// ("written") pages and protects them again in the same page-table walk, under the page-table
// lock of each page (PM_SCAN_WP_MATCHING): a write racing with the scan either happened before
// the scan reached its page (reported now) or faults on the fresh protection (reported next time).
//
// The userfaultfd must belong to the tracked process's mm: for another process it is created
// there by an injected syscall and taken over with pidfd_getfd (open_tracking_uffd). The tracker
// itself runs in the tracer and never stops the process.
//
// Contract with the caller (the pre-copy loop):
//   start(ranges)            everything is protected; now copy the ranges in full
//   loop: collect()          pages changed since start/add/the last collect; copy them now
//         re-read the layout; add() what appeared or changed (mmap, brk, mremap, mprotect to
//         writable); copy those ranges in full
// A copy must always come after the call that reported or registered its pages, never before.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "platform/linux/proc_parse.hpp"

namespace osmo::ckpt {

// [start, end), page aligned.
struct PageRange {
  std::uint64_t start = 0, end = 0;
  std::uint64_t pages() const { return (end - start) / 4096; }
  bool operator==(const PageRange&) const = default;
};

// What this kernel offers for write tracking. Probed once per process (the first call runs a
// self-test on a few MiB of the caller's own memory, see dirty_pages.cpp) and cached.
struct DirtyTrackingSupport {
  bool pagemap_scan = false;        // PAGEMAP_SCAN ioctl (Linux 6.7)
  std::uint64_t uffd_features = 0;  // every UFFD_FEATURE_* bit UFFDIO_API offers
  // A page table dropped as a whole (MADV_DONTNEED of a 2 MiB anonymous THP, or of a whole
  // PTE table that the kernel then frees) reads as written. Kernels before the fix "PAGEMAP_SCAN
  // written state for PMD holes" (2026-07) skip such holes: the tracker then looks for them with
  // a second scan (~0.6 ms per GiB here).
  bool pmd_holes_reported = false;
  // PAGEMAP_SCAN knows PAGE_IS_GUARD (MADV_GUARD_INSTALL regions, Linux 6.14): needed by
  // DirtyTracker::guard_pages().
  bool guard_category = false;
};
Result<DirtyTrackingSupport> dirty_tracking_support();

// The UFFD_FEATURE_* bits a tracking userfaultfd is negotiated with: WP_ASYNC and
// WP_UNPOPULATED (required: without the latter PAGEMAP_SCAN refuses to write-protect anonymous
// memory), WP_HUGETLBFS_SHMEM where offered (private mappings of memfd/tmpfs files). Fails with a
// precise message on a kernel without them.
Result<std::uint64_t> make_uffd_features();
// UFFDIO_API on a fresh userfaultfd with make_uffd_features().
Status negotiate_tracking_features(int uffd);

// Runs system call `nr` with `args` inside the tracked process (the engine: Tracee::syscall on a
// seized, stopped process) and returns its raw result (-errno on failure).
using InjectSyscall =
    std::function<Result<long>(long nr, const std::array<std::uint64_t, 6>& args)>;
// A tracking userfaultfd for process `pid`: created inside it by an injected userfaultfd(2)
// (so it acts on pid's mm), taken over with pidfd_getfd, the process's own descriptor closed
// again by an injected close(2), and negotiated. Needs the right to pidfd_getfd (ptrace access).
Result<UniqueFd> open_tracking_uffd(pid_t pid, const InjectSyscall& inject);
// The same for the calling process's own memory (tests, benchmarks, the self-test).
Result<UniqueFd> open_own_tracking_uffd();

struct DirtyTrackerOptions {
  // Look for dropped page tables with a second scan: kAuto does it only where
  // DirtyTrackingSupport::pmd_holes_reported is false.
  enum class HoleScan { kAuto, kAlways, kNever } hole_scan = HoleScan::kAuto;
  // Write protection arms every page of a registered mapping, present or not (WP_UNPOPULATED),
  // which costs page tables for the whole virtual size: 2 MiB per GiB and ~15 ms per GiB here.
  // start()/add() refuse to register more than this in total.
  std::uint64_t max_tracked_bytes = 64ull << 30;
};

// The kernel's struct page_region, PAGEMAP_SCAN's output (internal; here for the buffer member).
struct PagemapRegion {
  std::uint64_t start, end, categories;
};

// What the last collect() found (pages; a page may count in more than one line).
struct DirtyStats {
  // Reported by the write-protect scan (written or zapped).
  std::uint64_t written = 0;
  // In a tracked range whose mapping was replaced (munmap + mmap, mremap).
  std::uint64_t untracked = 0;
  // Dropped page tables (only with the hole scan).
  std::uint64_t holes = 0;
  // Private file pages that went back to the file's content.
  std::uint64_t reverted = 0;
  // Pages in the returned ranges, and the time collect() took.
  std::uint64_t reported = 0;
  std::uint64_t scan_ns = 0;
};

class DirtyTracker {
 public:
  // Registers and write-protects every private writable mapping (anonymous, private file, private
  // memfd) that lies in `ranges` of process `pid`, whose mm `uffd` belongs to (from
  // open_tracking_uffd / open_own_tracking_uffd). Shared mappings, read-only mappings, droppable
  // memory (MAP_DROPPABLE: its content may vanish at any time anyway) and the kernel's
  // [vdso]/[vvar]/[vvar_vclock]/[vsyscall] are not tracked: a write through another process or
  // the file never touches our page tables, and a read-only mapping that becomes writable is a
  // layout change the caller must add(). hugetlb mappings are refused with an error: the kernel
  // keeps a huge page that MADV_DONTNEED emptied marked clean, so a change there could be missed.
  // Read the layout and register it while the process is stopped, or be ready to retry: a
  // mapping that changes in between fails the registration. From now on a write to a tracked
  // page marks it written.
  static Result<DirtyTracker> start(pid_t pid, UniqueFd uffd, std::vector<PageRange> ranges,
                                    DirtyTrackerOptions options = {});
  // The calling process's own memory.
  static Result<DirtyTracker> start_self(std::vector<PageRange> ranges,
                                         DirtyTrackerOptions options = {});

  DirtyTracker(DirtyTracker&&) noexcept = default;
  DirtyTracker& operator=(DirtyTracker&&) noexcept;
  DirtyTracker(const DirtyTracker&) = delete;
  DirtyTracker& operator=(const DirtyTracker&) = delete;
  // Unregisters every tracked range (the kernel drops the protection) and closes the userfaultfd.
  ~DirtyTracker();

  // Pages of tracked ranges whose content may have changed since start(), add() or the last
  // collect(), sorted and coalesced; they are protected again (per page, atomically with the
  // report), so a write racing with this call is reported now or next time, never lost.
  // Besides written pages this reports (never misses, sometimes over-reports):
  //  - pages dropped by MADV_DONTNEED/MADV_FREE (now zero), also as whole page tables;
  //  - pages of a tracked range whose mapping was replaced (munmap + mmap, mremap away and
  //    back): all of them, at every collect until add() re-registers the range;
  //  - pages of a private file mapping that went back to the file's content (MADV_DONTNEED on a
  //    written page: the kernel keeps such a page protected, see dirty_pages.cpp);
  //  - pages written with an unchanged value, and whole 4 KiB pages for a one-byte write;
  //  - a page made a guard page (MADV_GUARD_INSTALL), once: its content is gone, and copying it
  //    fails with EFAULT (guard_pages() tells; the layout, not the pages, carries guards).
  // A page may also be unmapped between this call and the copy: the copier must expect EFAULT.
  // If the call fails half-way, what was already re-protected is kept and returned by the next
  // collect(): an error never loses a report. Fails (ESRCH) once the process has exited or
  // called exec: its new memory is not tracked.
  Result<std::vector<PageRange>> collect();

  // Starts tracking (again) `ranges` after a layout change: what is tracked inside them is first
  // forgotten, then every private writable mapping found there now is registered and protected,
  // exactly as by start(). The caller then copies these ranges in full.
  Status add(std::vector<PageRange> ranges);

  // The guard pages among `ranges` (empty where the kernel cannot tell): what a copier asks when
  // a copy of reported pages fails with EFAULT. Leaving them out of every report instead would
  // cost collect() a second scan of ~1 ms per GiB for a rare case that the copier must handle
  // anyway (a guard can be installed after the report).
  Result<std::vector<PageRange>> guard_pages(const std::vector<PageRange>& ranges);

  // The tracked ranges (only the private writable mappings found by start()/add()).
  std::vector<PageRange> tracked() const;
  const DirtyStats& last_stats() const { return stats_; }
  bool hole_scan() const { return hole_scan_; }

 private:
  struct Piece {
    std::uint64_t start = 0, end = 0;
    bool file_backed = false;  // private file or memfd mapping
    // File-backed: the pages that were no longer the file's at the last look.
    std::vector<PageRange> private_pages;
  };
  DirtyTracker() = default;
  void release();
  // Registers one piece; droppable memory is skipped (smaps read once per add(), on demand).
  Status register_range(const Piece& piece, std::vector<platform::SmapsVma>* smaps);
  Status check_mm_alive();
  Error context(Error e) const;

  pid_t pid_ = -1;
  UniqueFd uffd_;
  UniqueFd pagemap_;
  std::vector<Piece> pieces_;            // sorted, disjoint
  std::vector<PageRange> carry_;         // reports of a failed collect(), returned by the next one
  std::vector<PagemapRegion> scan_buf_;  // PAGEMAP_SCAN output, kept zeroed between calls
  bool guard_category_ = false;
  bool hole_scan_ = false;
  std::uint64_t max_tracked_bytes_ = 0;
  DirtyStats stats_;
};

// Range arithmetic on sorted, coalesced lists (public for tests).
std::vector<PageRange> coalesce(std::vector<PageRange> ranges);
std::vector<PageRange> subtract(const std::vector<PageRange>& a, const std::vector<PageRange>& b);

// The writes of a running process (not traced by anyone else): seizes it, creates its
// userfaultfd by injection, starts tracking every private writable mapping it has, puts it back
// as it was and lets it go on (track_writes.cpp). Pre-copy's start.
Result<DirtyTracker> track_running_process(pid_t pid);

}  // namespace osmo::ckpt
