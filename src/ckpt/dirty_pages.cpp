// SPDX-License-Identifier: GPL-2.0-or-later
// The dirty-page tracker (dirty_pages.hpp): userfaultfd asynchronous write protection plus the
// PAGEMAP_SCAN ioctl. What the kernel does, and what it does not, that shaped this file:
//
// - PAGEMAP_SCAN with category_mask == return_mask == PAGE_IS_WRITTEN (nothing inverted, no
//   any-of mask) takes a fast path: one test of the uffd-wp bit per PTE, ~0.5 ms per GiB here
//   when nothing was written, ~3-7 ms when everything was. Any other mask takes the general path
//   (categories computed per PTE: ~0.6 ms per GiB, but ~10 ms when PAGE_IS_FILE is asked for,
//   which looks up the page behind every PTE). collect() asks for PAGE_IS_FILE only on the
//   file-backed ranges.
// - A PTE counts as "written" when it carries no uffd-wp bit: present and unprotected, but also
//   an empty PTE (MADV_DONTNEED, MADV_FREE reclaimed) whose protection marker is gone. So a page
//   zapped to zero is reported, as it must be. A range whose whole page table is gone (a 2 MiB
//   anonymous THP dropped by MADV_DONTNEED; empty PTE tables the kernel frees, CONFIG_PT_RECLAIM)
//   is a "PMD hole": kernels before the fix of 2026-07 skip holes in every scan, so the tracker
//   then searches for them itself (hole scan, below). dirty_tracking_support() tells which.
// - WP_UNPOPULATED is required, not optional: without it PAGEMAP_SCAN does not treat an anonymous
//   mapping as write-protectable (it refuses with PM_SCAN_CHECK_WPASYNC, skips it without).
//   It also makes UFFDIO_WRITEPROTECT put markers in empty PTEs, which allocates the page tables
//   of the whole range (2 MiB per GiB): hence DirtyTrackerOptions::max_tracked_bytes.
// - PM_SCAN_CHECK_WPASYNC aborts a scan at the first mapping that is not under asynchronous
//   protection, with EPERM, after the pages before it were already re-protected and their report
//   written only into the output buffer of a call that returns -1 (seen here: a written page was
//   lost that way). collect() therefore never passes it: a mapping that is no longer registered
//   (munmap + mmap, mremap) is skipped by the write-protect scan and found by a separate query
//   (category_inverted = PAGE_IS_WPALLOWED). start() uses the flag once, to check the
//   negotiation, when nothing can be lost.
// - In a private file mapping, MADV_DONTNEED of a written page that was protected again makes the
//   page the file's again, and the kernel keeps (marks) it protected, since for a file page the
//   content lives on in the page cache: the page changed, yet reads as clean. collect() keeps,
//   for each file-backed range, the pages that were no longer the file's (present and not
//   PAGE_IS_FILE) at the last look, and reports those that are not any more.
// - Asynchronous protection resolves a write fault inside the kernel, without handle_userfault(),
//   so writes by the kernel (read(2) into a buffer, process_vm_writev, /proc/PID/mem even into a
//   read-only page) are tracked like user writes, also with UFFD_USER_MODE_ONLY, which an
//   unprivileged process needs to create a userfaultfd at all.
// - A write to a protected anonymous THP splits it: tracking has page granularity.
// - On hugetlb, MADV_DONTNEED leaves a protection marker on the emptied huge page (it reads clean
//   although it is now zero): refused. MAP_DROPPABLE memory is refused by UFFDIO_REGISTER
//   (EINVAL) and looks like any private mapping in maps; smaps says "dp": skipped. A guard
//   page's marker (MADV_GUARD_INSTALL) carries no protection bit, so it is reported once, then
//   marked and still guarding; guard_pages() names guards for the copier.
// - After exit or exec the userfaultfd and our pagemap fd still refer to the old mm, and scans of
//   it fail with ESRCH: collect() says the tracked memory is gone.
#include "ckpt/dirty_pages.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>

#include "base/scope_guard.hpp"
#include "ckpt/proc.hpp"
#include "platform/linux/pidfd.hpp"
#include "platform/linux/proc_files.hpp"

namespace osmo::ckpt {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kHuge = 2u << 20;

// Linux 6.7 UAPI (<linux/fs.h>); Debian 12's headers are 6.1, so we keep our own copy.
struct PmScanArg {
  std::uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  std::uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
using PageRegion = PagemapRegion;
static_assert(sizeof(PmScanArg) == 96 && sizeof(PageRegion) == 24);
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr std::uint64_t kWpMatching = 1u << 0;    // PM_SCAN_WP_MATCHING
constexpr std::uint64_t kCheckWpAsync = 1u << 1;  // PM_SCAN_CHECK_WPASYNC
constexpr std::uint64_t kIsWpAllowed = 1u << 0;   // PAGE_IS_WPALLOWED
constexpr std::uint64_t kIsWritten = 1u << 1;     // PAGE_IS_WRITTEN
constexpr std::uint64_t kIsFile = 1u << 2;        // PAGE_IS_FILE
constexpr std::uint64_t kIsPresent = 1u << 3;     // PAGE_IS_PRESENT
constexpr std::uint64_t kIsSwapped = 1u << 4;     // PAGE_IS_SWAPPED (also: a protection marker)
constexpr std::uint64_t kIsHuge = 1u << 6;        // PAGE_IS_HUGE
constexpr std::uint64_t kIsGuard = 1u << 8;       // PAGE_IS_GUARD (Linux 6.14)

constexpr std::uint64_t kIoctlZeropage = 1u << _UFFDIO_ZEROPAGE;  // in uffdio_register.ioctls

constexpr std::uint64_t kFeatureWpHugetlbfsShmem = 1u << 12;
constexpr std::uint64_t kFeatureWpUnpopulated = 1u << 13;
constexpr std::uint64_t kFeatureWpAsync = 1u << 15;
constexpr std::uint64_t kRequiredFeatures = kFeatureWpAsync | kFeatureWpUnpopulated;

constexpr std::size_t kScanVecLen = 16384;  // regions per PAGEMAP_SCAN call (384 KiB)

bool aligned(std::uint64_t v) {
  return v % kPage == 0;
}

Status check_ranges(const std::vector<PageRange>& ranges) {
  for (const PageRange& r : ranges) {
    if (!aligned(r.start) || !aligned(r.end) || r.start >= r.end)
      return make_error("range {:#x}-{:#x} is empty or not page aligned", r.start, r.end);
    if (r.end > (1ull << 47))
      return make_error("range {:#x}-{:#x} is not in user space", r.start, r.end);
  }
  return ok_status();
}

Result<UniqueFd> new_uffd(const char* who) {
  // USER_MODE_ONLY: an unprivileged process may create a userfaultfd only with it
  // (vm.unprivileged_userfaultfd = 0), and asynchronous write protection never needs the
  // kernel-mode faults it excludes (see the top of this file).
  UniqueFd fd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY)));
  if (!fd) return errno_error("userfaultfd(2) in {} failed", who);
  return fd;
}

// One scan request on a pagemap fd, with the output buffer kept zeroed between calls: after a
// failed call the regions the kernel did write (and, for a write-protect scan, re-protected) are
// the non-empty entries at the front.
class Scanner {
 public:
  Scanner(int pagemap_fd, std::vector<PageRegion>* buf) : fd_(pagemap_fd), vec_(*buf) {
    if (vec_.empty()) vec_.assign(kScanVecLen, PageRegion{0, 0, 0});
  }
  // Appends the matching ranges of [r.start, r.end) to *out; on failure the part already
  // reported is appended too.
  Status run(const PageRange& r, std::uint64_t flags, std::uint64_t inverted, std::uint64_t mask,
             std::uint64_t anyof, std::uint64_t ret_mask, std::vector<PageRegion>* out) {
    std::uint64_t at = r.start;
    while (at < r.end) {
      PmScanArg a{};
      a.size = sizeof(a);
      a.flags = flags;
      a.start = at;
      a.end = r.end;
      a.vec = reinterpret_cast<std::uintptr_t>(vec_.data());
      a.vec_len = vec_.size();
      a.category_inverted = inverted;
      a.category_mask = mask;
      a.category_anyof_mask = anyof;
      a.return_mask = ret_mask;
      long n = ::ioctl(fd_, kPagemapScan, &a);
      if (n < 0) {
        int saved = errno;
        std::size_t k = 0;
        while (k < vec_.size() && vec_[k].end != 0) k++;
        out->insert(out->end(), vec_.begin(), vec_.begin() + static_cast<std::ptrdiff_t>(k));
        std::fill(vec_.begin(), vec_.end(), PageRegion{0, 0, 0});
        errno = saved;
        return errno_error("PAGEMAP_SCAN of {:#x}-{:#x} failed", at, r.end);
      }
      auto end = vec_.begin() + n;
      out->insert(out->end(), vec_.begin(), end);
      std::fill(vec_.begin(), end, PageRegion{0, 0, 0});
      // A full buffer stops the walk at walk_end; what lies beyond was not looked at (nor
      // re-protected) and is scanned by the next call.
      if (a.walk_end <= at || a.walk_end >= r.end) break;
      at = a.walk_end;
    }
    return ok_status();
  }

 private:
  int fd_;
  std::vector<PageRegion>& vec_;
};

std::uint64_t count_pages(const std::vector<PageRegion>& v) {
  std::uint64_t n = 0;
  for (const PageRegion& g : v) n += (g.end - g.start) / kPage;
  return n;
}

void append(const std::vector<PageRegion>& v, std::vector<PageRange>* out) {
  for (const PageRegion& g : v) out->push_back({g.start, g.end});
}

Status write_protect(int uffd, std::uint64_t start, std::uint64_t end) {
  uffdio_writeprotect wp{};
  wp.range = {start, end - start};
  wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (::ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0)
    return errno_error("UFFDIO_WRITEPROTECT of {:#x}-{:#x} failed", start, end);
  return ok_status();
}

bool special_mapping(const MapsEntry& e) {
  return e.name == "[vdso]" || e.name == "[vvar]" || e.name == "[vvar_vclock]" ||
         e.name == "[vsyscall]";
}

}  // namespace

namespace {

// The self-test behind DirtyTrackingSupport::pmd_holes_reported: protect two 2 MiB ranges of our
// own memory, one backed by a THP (if the kernel gives one) and one by a PTE table, drop both
// with MADV_DONTNEED and see whether a read-only fast scan calls them written.
Result<bool> probe_pmd_holes(std::uint64_t features) {
  std::size_t len = 3 * kHuge;
  void* raw = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return errno_error("mmap of the hole self-test failed");
  ScopeGuard unmap([&] { ::munmap(raw, len); });
  auto base = (reinterpret_cast<std::uint64_t>(raw) + kHuge - 1) & ~(kHuge - 1);
  auto* thp = reinterpret_cast<char*>(base);
  char* pte = thp + kHuge;  // within raw: base + 2 * kHuge <= raw + len
  ::madvise(thp, kHuge, MADV_HUGEPAGE);
  ::madvise(pte, kHuge, MADV_NOHUGEPAGE);
  std::memset(thp, 1, 2 * kHuge);
  UniqueFd pm(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pm) return errno_error("cannot open /proc/self/pagemap");
  std::vector<PageRegion> buf;
  Scanner scanner(pm.get(), &buf);
  auto is_huge = [&]() -> Result<bool> {
    std::vector<PageRegion> v;
    OSMO_TRY(scanner.run({base, base + kHuge}, 0, 0, kIsHuge, 0, kIsHuge, &v));
    return count_pages(v) == kHuge / kPage;
  };
  OSMO_ASSIGN_OR_RETURN(bool huge, is_huge());
  if (!huge) {
    ::madvise(thp, kHuge, 25 /* MADV_COLLAPSE, Linux 6.1 */);
    OSMO_ASSIGN_OR_RETURN(huge, is_huge());
  }
  bool thp_possible = true;
  if (!huge) {
    // Without a THP here we cannot tell; a system where THP is off cannot produce THP holes.
    auto mode = read_text_file("/sys/kernel/mm/transparent_hugepage/enabled");
    thp_possible = !(mode.ok() && mode->find("[never]") != std::string::npos);
  }
  OSMO_ASSIGN_OR_RETURN(UniqueFd uffd, new_uffd("the calling process"));
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = features;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0)
    return errno_error("UFFDIO_API for the hole self-test failed");
  uffdio_register reg{};
  reg.range = {base, 2 * kHuge};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(uffd.get(), UFFDIO_REGISTER, &reg) != 0)
    return errno_error("UFFDIO_REGISTER for the hole self-test failed");
  OSMO_TRY(write_protect(uffd.get(), base, base + 2 * kHuge));
  ::madvise(thp, 2 * kHuge, MADV_DONTNEED);
  auto written = [&](std::uint64_t s) -> Result<std::uint64_t> {
    std::vector<PageRegion> v;
    OSMO_TRY(scanner.run({s, s + kHuge}, 0, 0, kIsWritten, 0, kIsWritten, &v));
    return count_pages(v);
  };
  OSMO_ASSIGN_OR_RETURN(std::uint64_t w_thp, written(base));
  OSMO_ASSIGN_OR_RETURN(std::uint64_t w_pte, written(base + kHuge));
  bool thp_ok = huge ? w_thp == kHuge / kPage : !thp_possible;
  return thp_ok && w_pte == kHuge / kPage;
}

Result<DirtyTrackingSupport> probe_support() {
  DirtyTrackingSupport s;
  {
    OSMO_ASSIGN_OR_RETURN(UniqueFd fd, new_uffd("the calling process"));
    uffdio_api api{};
    api.api = UFFD_API;
    if (::ioctl(fd.get(), UFFDIO_API, &api) != 0)
      return errno_error("UFFDIO_API (feature probe) failed");
    s.uffd_features = api.features;
  }
  {
    UniqueFd pm(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    if (!pm) return errno_error("cannot open /proc/self/pagemap");
    auto here = reinterpret_cast<std::uint64_t>(&s) & ~(kPage - 1);
    PmScanArg a{};
    a.size = sizeof(a);
    a.start = here;
    a.end = here + kPage;
    s.pagemap_scan = ::ioctl(pm.get(), kPagemapScan, &a) >= 0;
    a.return_mask = kIsGuard;  // an unknown category is EINVAL
    s.guard_category = s.pagemap_scan && ::ioctl(pm.get(), kPagemapScan, &a) >= 0;
  }
  if (s.pagemap_scan && (s.uffd_features & kRequiredFeatures) == kRequiredFeatures) {
    OSMO_ASSIGN_OR_RETURN(s.pmd_holes_reported, probe_pmd_holes(kRequiredFeatures));
  }
  return s;
}

}  // namespace

Result<DirtyTrackingSupport> dirty_tracking_support() {
  static std::once_flag once;
  static Result<DirtyTrackingSupport> cached{DirtyTrackingSupport{}};
  std::call_once(once, [] { cached = probe_support(); });
  return cached;
}

Result<std::uint64_t> make_uffd_features() {
  OSMO_ASSIGN_OR_RETURN(DirtyTrackingSupport s, dirty_tracking_support());
  if (!s.pagemap_scan)
    return make_error("this kernel has no PAGEMAP_SCAN ioctl (Linux 6.7 or later is needed)");
  if ((s.uffd_features & kFeatureWpAsync) == 0)
    return make_error(
        "this kernel's userfaultfd lacks UFFD_FEATURE_WP_ASYNC (Linux 6.7 or later is needed)");
  if ((s.uffd_features & kFeatureWpUnpopulated) == 0)
    return make_error(
        "this kernel's userfaultfd lacks UFFD_FEATURE_WP_UNPOPULATED (Linux 6.4 or later, "
        "CONFIG_PTE_MARKER_UFFD_WP)");
  return kRequiredFeatures | (s.uffd_features & kFeatureWpHugetlbfsShmem);
}

Status negotiate_tracking_features(int uffd) {
  OSMO_ASSIGN_OR_RETURN(std::uint64_t features, make_uffd_features());
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = features;
  if (::ioctl(uffd, UFFDIO_API, &api) != 0)
    return errno_error(
        "UFFDIO_API with features {:#x} failed (a userfaultfd is negotiated only once)", features);
  return ok_status();
}

Result<UniqueFd> open_tracking_uffd(pid_t pid, const InjectSyscall& inject) {
  // Refuse before touching the process on a kernel that cannot track.
  if (auto f = make_uffd_features(); !f.ok()) return f.take_error();
  OSMO_ASSIGN_OR_RETURN(long tfd,
                        inject(SYS_userfaultfd, {O_CLOEXEC | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0}));
  if (tfd < 0 && tfd > -4096)
    return Error{static_cast<int>(-tfd),
                 fmt::format("injected userfaultfd(2) in pid {} failed", pid)};
  UniqueFd ufd = platform::take_fd(pid, static_cast<int>(tfd));
  const int getfd_errno = errno;
  // The process must not keep a descriptor of its own: it would see an fd it never opened, and a
  // later checkpoint would refuse it (anon_inode). Ours alone keeps the userfaultfd alive.
  OSMO_ASSIGN_OR_RETURN(long closed,
                        inject(SYS_close, {static_cast<std::uint64_t>(tfd), 0, 0, 0, 0, 0}));
  if (closed < 0)
    return Error{static_cast<int>(-closed),
                 fmt::format("injected close({}) of the userfaultfd in pid {} failed", tfd, pid)};
  if (!ufd) {
    errno = getfd_errno;
    return errno_error("cannot take fd {} (userfaultfd) of pid {} with pidfd_getfd", tfd, pid);
  }
  OSMO_TRY(negotiate_tracking_features(ufd.get()));
  return ufd;
}

Result<UniqueFd> open_own_tracking_uffd() {
  OSMO_ASSIGN_OR_RETURN(UniqueFd fd, new_uffd("the calling process"));
  OSMO_TRY(negotiate_tracking_features(fd.get()));
  return fd;
}

std::vector<PageRange> coalesce(std::vector<PageRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const PageRange& a, const PageRange& b) { return a.start < b.start; });
  std::vector<PageRange> out;
  for (const PageRange& r : ranges) {
    if (r.start >= r.end) continue;
    if (!out.empty() && r.start <= out.back().end)
      out.back().end = std::max(out.back().end, r.end);
    else
      out.push_back(r);
  }
  return out;
}

std::vector<PageRange> subtract(const std::vector<PageRange>& a, const std::vector<PageRange>& b) {
  std::vector<PageRange> out;
  std::size_t j = 0;
  for (PageRange r : a) {
    while (j < b.size() && b[j].end <= r.start) j++;
    for (std::size_t k = j; k < b.size() && b[k].start < r.end; k++) {
      if (b[k].start > r.start) out.push_back({r.start, b[k].start});
      r.start = std::max(r.start, b[k].end);
      if (r.start >= r.end) break;
    }
    if (r.start < r.end) out.push_back(r);
  }
  return out;
}

Result<DirtyTracker> DirtyTracker::start(pid_t pid, UniqueFd uffd, std::vector<PageRange> ranges,
                                         DirtyTrackerOptions options) {
  OSMO_TRY(check_ranges(ranges));
  if (!uffd) return make_error("no userfaultfd given for pid {}", pid);
  OSMO_ASSIGN_OR_RETURN(DirtyTrackingSupport support, dirty_tracking_support());
  DirtyTracker t;
  t.pid_ = pid;
  t.max_tracked_bytes_ = options.max_tracked_bytes;
  t.guard_category_ = support.guard_category;
  if (options.hole_scan == DirtyTrackerOptions::HoleScan::kAuto) {
    t.hole_scan_ = !support.pmd_holes_reported;
  } else {
    t.hole_scan_ = options.hole_scan == DirtyTrackerOptions::HoleScan::kAlways;
  }
  std::string path = fmt::format("/proc/{}/pagemap", pid);
  t.pagemap_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!t.pagemap_) return errno_error("cannot open {}", path);
  t.uffd_ = std::move(uffd);
  OSMO_TRY(t.add(std::move(ranges)));
  // Every registered mapping must be under asynchronous protection, or nothing it reports could
  // be trusted: a userfaultfd negotiated without WP_ASYNC/WP_UNPOPULATED fails here (EPERM).
  Scanner scanner(t.pagemap_.get(), &t.scan_buf_);
  for (const Piece& p : t.pieces_) {
    std::vector<PageRegion> v;
    Status s = scanner.run({p.start, p.end}, kCheckWpAsync, kIsWpAllowed, kIsWpAllowed, 0,
                           kIsWpAllowed, &v);
    if (!s.ok() || !v.empty())
      return make_error(
          "pid {}: {:#x}-{:#x} is not under asynchronous write protection (a userfaultfd "
          "negotiated without WP_ASYNC and WP_UNPOPULATED?){}",
          pid, p.start, p.end, s.ok() ? "" : ": " + s.error().str());
  }
  return t;
}

Result<DirtyTracker> DirtyTracker::start_self(std::vector<PageRange> ranges,
                                              DirtyTrackerOptions options) {
  OSMO_TRY(check_ranges(ranges));
  OSMO_ASSIGN_OR_RETURN(UniqueFd uffd, open_own_tracking_uffd());
  return start(::getpid(), std::move(uffd), std::move(ranges), options);
}

DirtyTracker& DirtyTracker::operator=(DirtyTracker&& o) noexcept {
  if (this != &o) {
    release();
    pid_ = o.pid_;
    uffd_ = std::move(o.uffd_);
    pagemap_ = std::move(o.pagemap_);
    pieces_ = std::move(o.pieces_);
    carry_ = std::move(o.carry_);
    scan_buf_ = std::move(o.scan_buf_);
    guard_category_ = o.guard_category_;
    hole_scan_ = o.hole_scan_;
    max_tracked_bytes_ = o.max_tracked_bytes_;
    stats_ = o.stats_;
  }
  return *this;
}

DirtyTracker::~DirtyTracker() {
  release();
}

void DirtyTracker::release() {
  if (uffd_) {
    // Unregistering removes the protection of every page (markers included), so the process
    // runs on without a single extra fault; closing the userfaultfd alone would do the same for
    // the last holder of it, but a duplicate may live elsewhere.
    for (const Piece& p : pieces_) {
      uffdio_range r{p.start, p.end - p.start};
      (void)::ioctl(uffd_.get(), UFFDIO_UNREGISTER, &r);
    }
  }
  pieces_.clear();
  uffd_.reset();
  pagemap_.reset();
}

std::vector<PageRange> DirtyTracker::tracked() const {
  std::vector<PageRange> out;
  for (const Piece& p : pieces_) out.push_back({p.start, p.end});
  return coalesce(std::move(out));
}

Status DirtyTracker::add(std::vector<PageRange> ranges) {
  OSMO_TRY(check_ranges(ranges));
  if (!uffd_) return make_error("the dirty tracker of pid {} was released", pid_);
  ranges = coalesce(std::move(ranges));
  OSMO_ASSIGN_OR_RETURN(std::vector<MapsEntry> maps, read_maps(pid_));

  // What the ranges hold now: private writable mappings, cut to the ranges.
  std::vector<Piece> fresh;
  for (const MapsEntry& e : maps) {
    if (e.shared || !e.w || special_mapping(e)) continue;
    for (const PageRange& r : ranges) {
      std::uint64_t s = std::max(r.start, e.start), en = std::min(r.end, e.end);
      if (s < en) fresh.push_back({s, en, e.inode != 0, {}});
    }
  }
  std::uint64_t total = 0;
  for (const PageRange& r : subtract(tracked(), ranges)) total += r.end - r.start;
  for (const Piece& p : fresh) total += p.end - p.start;
  if (total > max_tracked_bytes_)
    return make_error(
        "pid {}: tracking {} MiB of private writable mappings would exceed the limit of {} MiB "
        "(their page tables alone: {} MiB)",
        pid_, total >> 20, max_tracked_bytes_ >> 20, total >> 29);

  // Forget what was tracked inside the ranges; unregister what is not tracked again below (a
  // mapping that became shared or read-only, or was unmapped).
  std::vector<PageRange> fresh_ranges;
  for (const Piece& p : fresh) fresh_ranges.push_back({p.start, p.end});
  fresh_ranges = coalesce(std::move(fresh_ranges));
  std::vector<Piece> kept;
  for (Piece& p : pieces_) {
    std::vector<PageRange> outside = subtract({{p.start, p.end}}, ranges);
    std::vector<PageRange> inside = subtract({{p.start, p.end}}, outside);
    for (const PageRange& gone : subtract(inside, fresh_ranges)) {
      uffdio_range ur{gone.start, gone.end - gone.start};
      (void)::ioctl(uffd_.get(), UFFDIO_UNREGISTER, &ur);
    }
    for (const PageRange& o : outside) {
      Piece q{o.start, o.end, p.file_backed, {}};
      for (const PageRange& pp : p.private_pages) {
        std::uint64_t s = std::max(pp.start, o.start), en = std::min(pp.end, o.end);
        if (s < en) q.private_pages.push_back({s, en});
      }
      kept.push_back(std::move(q));
    }
  }
  pieces_ = std::move(kept);
  ScopeGuard sorted([&] {
    std::sort(pieces_.begin(), pieces_.end(),
              [](const Piece& a, const Piece& b) { return a.start < b.start; });
  });
  std::vector<platform::SmapsVma> smaps;
  for (const Piece& p : fresh) OSMO_TRY(register_range(p, &smaps));
  return ok_status();
}

Status DirtyTracker::register_range(const Piece& piece, std::vector<platform::SmapsVma>* smaps) {
  uffdio_register reg{};
  reg.range = {piece.start, piece.end - piece.start};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) {
    Error e = errno_error(
        "pid {}: cannot register {:#x}-{:#x} for write tracking (did the layout change since "
        "/proc/{}/maps was read?)",
        pid_, piece.start, piece.end, pid_);
    if (e.code == ESRCH) return context(std::move(e));
    // userfaultfd refuses droppable memory (VM_DROPPABLE, "dp"), which maps shows as ordinary
    // private anonymous memory: only smaps tells.
    if (e.code == EINVAL) {
      if (smaps->empty()) {
        OSMO_ASSIGN_OR_RETURN(*smaps, platform::read_smaps(pid_));
      }
      for (const platform::SmapsVma& f : *smaps)
        if (f.start <= piece.start && piece.start < f.end && platform::has_vm_flag(f.vm_flags, "dp"))
          return ok_status();
    }
    return e;
  }
  // hugetlb is the only memory registered without UFFDIO_ZEROPAGE. There, MADV_DONTNEED leaves a
  // protection marker on a zapped huge page, so it reads clean although it is now zero: refused.
  if ((reg.ioctls & kIoctlZeropage) == 0) {
    (void)::ioctl(uffd_.get(), UFFDIO_UNREGISTER, &reg.range);
    return make_error(
        "pid {}: {:#x}-{:#x} is hugetlb memory, where the kernel can lose track of a change "
        "(MADV_DONTNEED keeps an emptied huge page marked clean)",
        pid_, piece.start, piece.end);
  }
  // Tracked from here on, even if what follows fails: the destructor unregisters it.
  pieces_.push_back({piece.start, piece.end, piece.file_backed, {}});
  OSMO_TRY(write_protect(uffd_.get(), piece.start, piece.end));
  if (piece.file_backed) {
    Scanner scanner(pagemap_.get(), &scan_buf_);
    std::vector<PageRegion> v;
    OSMO_TRY(
        scanner.run({piece.start, piece.end}, 0, kIsFile, kIsFile | kIsPresent, 0, kIsPresent, &v));
    append(v, &pieces_.back().private_pages);
    pieces_.back().private_pages = coalesce(std::move(pieces_.back().private_pages));
  }
  return ok_status();
}

Result<std::vector<PageRange>> DirtyTracker::collect() {
  if (!uffd_) return make_error("the dirty tracker of pid {} was released", pid_);
  auto t0 = std::chrono::steady_clock::now();
  stats_ = DirtyStats{};
  // Runs of adjacent pieces: one scan each.
  std::vector<PageRange> runs;
  for (const Piece& p : pieces_) runs.push_back({p.start, p.end});
  runs = coalesce(std::move(runs));
  Scanner scanner(pagemap_.get(), &scan_buf_);
  // Everything found goes into carry_ at once, so that a failure below loses nothing.
  std::vector<PageRegion> found;
  auto keep = [&](std::uint64_t* counter) {
    *counter += count_pages(found);
    append(found, &carry_);
    found.clear();
  };

  // 1. Written pages, protected again in the same walk (the fast path: mask and return mask are
  //    PAGE_IS_WRITTEN alone).
  for (const PageRange& r : runs) {
    Status s = scanner.run(r, kWpMatching, 0, kIsWritten, 0, kIsWritten, &found);
    keep(&stats_.written);
    if (!s.ok()) return context(s.take_error());
  }
  // 2. Tracked ranges whose mapping is no longer the one we registered (the scan above skipped it).
  for (const PageRange& r : runs) {
    Status s = scanner.run(r, 0, kIsWpAllowed, kIsWpAllowed, 0, kIsWpAllowed, &found);
    keep(&stats_.untracked);
    if (!s.ok()) return context(s.take_error());
  }
  // 3. PMD holes, on kernels whose scan skips them: neither present, nor swapped or marked
  //    (a protection marker counts as swapped), nor written; protected again once reported. A
  //    write that fills such a hole between the query and UFFDIO_WRITEPROTECT is caught by the
  //    copy that follows this call.
  if (hole_scan_) {
    constexpr std::uint64_t kState = kIsPresent | kIsSwapped | kIsWritten;
    for (const PageRange& r : runs) {
      Status s = scanner.run(r, 0, kState, kState | kIsWpAllowed, 0, kIsWpAllowed, &found);
      std::vector<PageRegion> holes = found;
      keep(&stats_.holes);
      if (!s.ok()) return context(s.take_error());
      for (const PageRegion& h : holes) {
        Status w = write_protect(uffd_.get(), h.start, h.end);
        if (!w.ok() && w.error().code != ENOENT)  // ENOENT: unmapped meanwhile
          return context(w.take_error());
      }
    }
  }
  // 4. Private file pages that went back to the file's content (see the top of this file).
  for (Piece& p : pieces_) {
    if (!p.file_backed) continue;
    Status s =
        scanner.run({p.start, p.end}, 0, kIsFile, kIsFile | kIsPresent, 0, kIsPresent, &found);
    if (!s.ok()) {
      found.clear();
      return context(s.take_error());
    }
    std::vector<PageRange> now;
    append(found, &now);
    found.clear();
    now = coalesce(std::move(now));
    for (const PageRange& g : subtract(p.private_pages, now)) {
      stats_.reverted += g.pages();
      carry_.push_back(g);
    }
    p.private_pages = std::move(now);
  }

  carry_ = coalesce(std::move(carry_));
  // 5. Is the memory we track still the process's? After exec (or exit) the userfaultfd and our
  //    pagemap fd still refer to the old mm, whose mappings are gone: every scan above finds
  //    nothing, while the process runs on in a new mm that nobody tracks. A read of the old
  //    mm's pagemap then returns end of file (its users are gone). Checked last, so that an exec
  //    during the scans fails this call and not only the next one.
  OSMO_TRY(check_mm_alive());
  std::vector<PageRange> out = std::move(carry_);
  carry_.clear();
  for (const PageRange& r : out) stats_.reported += r.pages();
  stats_.scan_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  return out;
}

// Names the pid, and says what ESRCH means here: PAGEMAP_SCAN and the userfaultfd ioctls fail
// with it once the mm they act on has no users left (exit, exec).
Error DirtyTracker::context(Error e) const {
  if (e.code == ESRCH)
    return Error{
        ESRCH, fmt::format("pid {}: the tracked memory is gone (the process exited or called exec)",
                           pid_)};
  return Error{e.code, fmt::format("pid {}: {}", pid_, e.message)};
}

Status DirtyTracker::check_mm_alive() {
  std::uint64_t addr = pieces_.empty() ? 0 : pieces_.front().start, entry = 0;
  ssize_t n = ::pread(pagemap_.get(), &entry, sizeof(entry), static_cast<off_t>(addr / kPage * 8));
  if (n == static_cast<ssize_t>(sizeof(entry))) return ok_status();
  if (n < 0) return errno_error("pid {}: cannot read its pagemap", pid_);
  return Error{
      ESRCH,
      fmt::format("pid {}: the tracked memory is gone (the process exited or called exec)", pid_)};
}

Result<std::vector<PageRange>> DirtyTracker::guard_pages(const std::vector<PageRange>& ranges) {
  if (!uffd_) return make_error("the dirty tracker of pid {} was released", pid_);
  std::vector<PageRange> out;
  if (!guard_category_) return out;
  OSMO_TRY(check_ranges(ranges));
  Scanner scanner(pagemap_.get(), &scan_buf_);
  std::vector<PageRegion> found;
  for (const PageRange& r : coalesce(ranges)) {
    Status s = scanner.run(r, 0, 0, kIsGuard, 0, kIsGuard, &found);
    if (!s.ok()) return context(s.take_error());
  }
  append(found, &out);
  return coalesce(std::move(out));
}

}  // namespace osmo::ckpt
