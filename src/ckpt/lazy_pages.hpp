// SPDX-License-Identifier: GPL-2.0-or-later
// Post-copy's engine side: anonymous memory that a restore leaves missing and that arrives after
// the restored process already runs (docs/engine.md, "Lazy anonymous pages").
//
// Which pages are lazy is a pure function of the image (lazy_runs), so the dump (which leaves
// them out of its PAGES sections) and the restore (which leaves them missing) agree without
// telling each other: every page of the populate plan in an anonymous private mapping that is
// not mlocked, except the pages the kernel itself may touch while the restore is still under
// way (the rseq area, the robust futex list head, the clear-tid word) and the top of the stack
// (the first thing the process touches). Those travel in the image as before.
//
// Target: RestoreOptions::lazy_anonymous_pages makes the restore register the anonymous
// mappings with the new process's userfaultfd in missing mode (without UFFD_USER_MODE_ONLY, so
// a system call that touches a missing page waits for it instead of failing), fill only what
// the image carries, and hand the userfaultfd over, one LazyProcess per restored process. The
// caller reads its faults and events (lazy_read_events), installs pages as they arrive (lazy_install:
// UFFDIO_COPY / UFFDIO_ZEROPAGE, a page already there is skipped) and, once every page is in,
// unregisters (lazy_release): the mappings become ordinary memory.
//
// Source: the frozen original (HeldProcess) keeps every page; lazy_read_held reads them with
// process_vm_readv until all are sent, then the holder kills it.
//
// Everything is per process (pid, userfaultfd, ranges, runs), so a tree is served process by
// process with the same calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "ckpt/model.hpp"

namespace osmo::ckpt {

// Memory the process moved with mremap while pages were missing: what the source has at `from`
// is now at `to`.
struct LazyMove {
  std::uint64_t from = 0, to = 0, len = 0;
};

// One restored process whose lazy pages are still to come.
struct LazyProcess {
  pid_t pid = -1;      // as the caller's pid namespace sees it (-1 for a child forked meanwhile)
  std::int32_t image_pid = 0;  // its pid in the image (names it to the source, which knows that one)
  UniqueFd uffd;       // registered in missing mode over `ranges`, non-blocking
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // registered [start, end)
  std::vector<PageRun> runs;  // the lazy pages (sorted), as the source has them: what it will send
  // What the process did meanwhile (userfaultfd events, lazy_read_events): memory moved (in
  // order), and memory it dropped (MADV_DONTNEED, munmap: current addresses), where nothing
  // old may be installed any more (a fault there gets a zero page).
  std::vector<LazyMove> moves;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> dropped;
};

// Where the source's page `addr` is in p now (after its moves), and the other way round.
std::uint64_t lazy_current_address(const LazyProcess& p, std::uint64_t source_addr);
std::uint64_t lazy_source_address(const LazyProcess& p, std::uint64_t current_addr);
bool lazy_dropped(const LazyProcess& p, std::uint64_t current_addr);

// What a post-copy restore hands over (RestoreOptions::lazy_anonymous_pages): one entry per
// restored process, appended by the restore.
struct LazyPages {
  std::vector<LazyProcess> processes;
};

// The lazy pages of an image (sorted, page runs of img.mem.runs): see the file comment.
std::vector<PageRun> lazy_runs(const ProcessImage& img);
// a minus b, both sorted and non-overlapping within themselves.
std::vector<PageRun> runs_minus(const std::vector<PageRun>& a, const std::vector<PageRun>& b);
// Pages in a sorted run list.
std::uint64_t runs_pages(const std::vector<PageRun>& runs);
// Whether addr lies in one of the sorted runs.
bool runs_contain(const std::vector<PageRun>& runs, std::uint64_t addr);

// ---- target ----
// What happened on p's userfaultfd (never blocks; empty when nothing). The restore enables the
// fork, remap, remove and unmap events with the missing faults; each such event holds the
// process until it is read, so the caller reads events as promptly as faults. A remap or a
// remove/unmap is recorded in p (moves, dropped, ranges) here; a fork comes back with the
// child's userfaultfd (ours now), for a new LazyProcess (lazy_forked).
struct LazyEvent {
  enum class Kind { kFault, kFork } kind = Kind::kFault;
  std::uint64_t addr = 0;  // kFault: the page (current address)
  UniqueFd child_uffd;     // kFork
};
Result<std::vector<LazyEvent>> lazy_read_events(LazyProcess& p);
// The child of a fork seen as event `e` of `parent`: it misses what the parent missed, and
// gets the same pages.
LazyProcess lazy_forked(const LazyProcess& parent, LazyEvent&& e);
// Installs `pages` pages whose source address is addr: data (pages * 4096 bytes) or, when data
// is null, zero pages, where p has them now (lazy_current_address). Pages already present (a
// fault raced with the push, or sent twice), a range the process unmapped and memory it dropped
// are skipped. Wakes whoever waits on them. *gone is set when the process no longer exists
// (nothing more can be installed). Counts the pages installed.
Status lazy_install(const LazyProcess& p, std::uint64_t addr, const std::uint8_t* data, std::uint64_t pages,
                    std::uint64_t* installed, bool* gone);
// Every page is in: unregisters the ranges (waiters wake and fault normally) and closes the fd.
Status lazy_release(LazyProcess& p);

// ---- source ----
// Reads `pages` pages at addr of the held (stopped) original into buf.
Status lazy_read_held(pid_t pid, std::uint64_t addr, std::uint64_t pages, std::uint8_t* buf);

}  // namespace osmo::ckpt
