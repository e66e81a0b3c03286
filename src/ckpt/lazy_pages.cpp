// SPDX-License-Identifier: GPL-2.0-or-later
// Post-copy's engine side (see lazy_pages.hpp).
#include "ckpt/lazy_pages.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace osmo::ckpt {
namespace {

constexpr std::uint64_t kPage = 4096;
// Below the stack pointer: what a signal frame or the next calls write first.
constexpr std::uint64_t kStackEagerBelow = 64 << 10;

std::uint64_t page_down(std::uint64_t a) { return a & ~(kPage - 1); }

// The pages the kernel may touch during the restore (after the pages, before the process runs,
// no fault server yet) and the stack's hot top: they travel in the image.
std::vector<PageRun> eager_runs(const ProcessImage& img) {
  std::vector<PageRun> out;
  auto add = [&](std::uint64_t addr, std::uint64_t len) {
    if (addr == 0 || len == 0) return;
    const std::uint64_t a = page_down(addr), e = page_down(addr + len - 1) + kPage;
    out.push_back({a, (e - a) / kPage});
  };
  add(img.thread.rseq_addr, img.thread.rseq_len);
  add(img.thread.robust_list, std::max<std::uint64_t>(img.thread.robust_len, 8));
  add(img.thread.clear_tid, 4);
  const std::uint64_t sp = img.regs.gp.rsp;
  if (sp > kStackEagerBelow) add(sp - kStackEagerBelow, kStackEagerBelow + kPage);
  std::sort(out.begin(), out.end(), [](const PageRun& x, const PageRun& y) { return x.vaddr < y.vaddr; });
  // Merge overlaps so that runs_minus sees a clean list.
  std::vector<PageRun> merged;
  for (const PageRun& r : out) {
    if (!merged.empty() && merged.back().vaddr + merged.back().pages * kPage >= r.vaddr) {
      const std::uint64_t end = std::max(merged.back().vaddr + merged.back().pages * kPage, r.vaddr + r.pages * kPage);
      merged.back().pages = (end - merged.back().vaddr) / kPage;
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

}  // namespace

std::vector<PageRun> runs_minus(const std::vector<PageRun>& a, const std::vector<PageRun>& b) {
  std::vector<PageRun> out;
  std::size_t j = 0;
  for (const PageRun& r : a) {
    std::uint64_t s = r.vaddr;
    const std::uint64_t e = r.vaddr + r.pages * kPage;
    while (j < b.size() && b[j].vaddr + b[j].pages * kPage <= s) ++j;
    for (std::size_t k = j; k < b.size() && b[k].vaddr < e && s < e; ++k) {
      const std::uint64_t bs = b[k].vaddr, be = b[k].vaddr + b[k].pages * kPage;
      if (bs > s) out.push_back({s, (std::min(bs, e) - s) / kPage});
      s = std::max(s, be);
    }
    if (s < e) out.push_back({s, (e - s) / kPage});
  }
  return out;
}

std::uint64_t runs_pages(const std::vector<PageRun>& runs) {
  std::uint64_t n = 0;
  for (const PageRun& r : runs) n += r.pages;
  return n;
}

bool runs_contain(const std::vector<PageRun>& runs, std::uint64_t addr) {
  auto it = std::upper_bound(runs.begin(), runs.end(), addr,
                             [](std::uint64_t a, const PageRun& r) { return a < r.vaddr; });
  if (it == runs.begin()) return false;
  --it;
  return addr < it->vaddr + it->pages * kPage;
}

std::vector<PageRun> lazy_runs(const ProcessImage& img) {
  // The plan's runs that lie in anonymous private, unlocked mappings (a run never crosses a
  // mapping: the plan is made per mapping).
  std::vector<PageRun> in_anon;
  for (const PageRun& r : img.mem.runs) {
    for (const VmaImage& v : img.mem.vmas) {
      if (r.vaddr < v.start || r.vaddr >= v.end) continue;
      if (v.kind == VmaKind::kAnonPrivate && (v.flags & kVmaLocked) == 0) {
        const std::uint64_t end = std::min(v.end, r.vaddr + r.pages * kPage);
        in_anon.push_back({r.vaddr, (end - r.vaddr) / kPage});
      }
      break;
    }
  }
  return runs_minus(in_anon, eager_runs(img));
}

std::uint64_t lazy_current_address(const LazyProcess& p, std::uint64_t a) {
  for (const LazyMove& m : p.moves)
    if (a >= m.from && a < m.from + m.len) a = m.to + (a - m.from);
  return a;
}

std::uint64_t lazy_source_address(const LazyProcess& p, std::uint64_t a) {
  for (auto it = p.moves.rbegin(); it != p.moves.rend(); ++it)
    if (a >= it->to && a < it->to + it->len) a = it->from + (a - it->to);
  return a;
}

bool lazy_dropped(const LazyProcess& p, std::uint64_t a) {
  for (const auto& [s, e] : p.dropped)
    if (a >= s && a < e) return true;
  return false;
}

Result<std::vector<LazyEvent>> lazy_read_events(LazyProcess& p) {
  std::vector<LazyEvent> out;
  uffd_msg msgs[64];
  for (;;) {
    const ssize_t n = ::read(p.uffd.get(), msgs, sizeof msgs);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return errno_error("cannot read the faults of restored pid {} from its userfaultfd", p.pid);
    for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof(uffd_msg); ++i) {
      const uffd_msg& m = msgs[i];
      switch (m.event) {
        case UFFD_EVENT_PAGEFAULT: {
          LazyEvent e;
          e.addr = page_down(m.arg.pagefault.address);
          out.push_back(std::move(e));
          break;
        }
        case UFFD_EVENT_FORK: {
          LazyEvent e;
          e.kind = LazyEvent::Kind::kFork;
          e.child_uffd.reset(static_cast<int>(m.arg.fork.ufd));
          (void)::fcntl(e.child_uffd.get(), F_SETFD, FD_CLOEXEC);
          out.push_back(std::move(e));
          break;
        }
        case UFFD_EVENT_REMAP:
          p.moves.push_back({m.arg.remap.from, m.arg.remap.to, m.arg.remap.len});
          p.ranges.push_back({m.arg.remap.to, m.arg.remap.to + m.arg.remap.len});
          break;
        case UFFD_EVENT_REMOVE:
        case UFFD_EVENT_UNMAP:
          p.dropped.push_back({m.arg.remove.start, m.arg.remove.end});
          break;
        default:
          break;
      }
    }
    if (static_cast<std::size_t>(n) < sizeof msgs) break;
  }
  return out;
}

LazyProcess lazy_forked(const LazyProcess& parent, LazyEvent&& e) {
  LazyProcess c;
  c.image_pid = parent.image_pid;
  c.uffd = std::move(e.child_uffd);
  c.ranges = parent.ranges;
  c.runs = parent.runs;
  c.moves = parent.moves;
  c.dropped = parent.dropped;
  return c;
}

namespace {

// One contiguous piece at its current address (no move or drop inside).
Status install_piece(const LazyProcess& p, std::uint64_t addr, const std::uint8_t* data, std::uint64_t pages,
                     std::uint64_t* installed, bool* gone);

}  // namespace

Status lazy_install(const LazyProcess& p, std::uint64_t addr, const std::uint8_t* data, std::uint64_t pages,
                    std::uint64_t* installed, bool* gone) {
  if (p.moves.empty() && p.dropped.empty()) return install_piece(p, addr, data, pages, installed, gone);
  // The process moved or dropped memory: page by page, merged where they stay together.
  std::uint64_t i = 0;
  while (i < pages) {
    const std::uint64_t cur = lazy_current_address(p, addr + i * kPage);
    if (lazy_dropped(p, cur)) {
      ++i;
      continue;
    }
    std::uint64_t k = 1;
    while (i + k < pages && lazy_current_address(p, addr + (i + k) * kPage) == cur + k * kPage &&
           !lazy_dropped(p, cur + k * kPage))
      ++k;
    OSMO_TRY(install_piece(p, cur, data != nullptr ? data + i * kPage : nullptr, k, installed, gone));
    if (gone != nullptr && *gone) return ok_status();
    i += k;
  }
  return ok_status();
}

namespace {

Status install_piece(const LazyProcess& p, std::uint64_t addr, const std::uint8_t* data, std::uint64_t pages,
                     std::uint64_t* installed, bool* gone) {
  std::uint64_t done = 0;  // pages handled (installed or skipped)
  while (done < pages) {
    const std::uint64_t dst = addr + done * kPage, len = (pages - done) * kPage;
    long rc;
    std::int64_t moved;
    if (data != nullptr) {
      uffdio_copy cp{};
      cp.dst = dst;
      cp.src = reinterpret_cast<std::uint64_t>(data + done * kPage);
      cp.len = len;
      rc = ::ioctl(p.uffd.get(), UFFDIO_COPY, &cp);
      moved = cp.copy;
    } else {
      uffdio_zeropage zp{};
      zp.range = {dst, len};
      rc = ::ioctl(p.uffd.get(), UFFDIO_ZEROPAGE, &zp);
      moved = zp.zeropage;
    }
    const int err = rc == 0 ? 0 : errno;
    if (moved > 0) {  // what the call did before it stopped (all of it when rc == 0)
      done += static_cast<std::uint64_t>(moved) / kPage;
      if (installed != nullptr) *installed += static_cast<std::uint64_t>(moved) / kPage;
    }
    if (rc == 0) {
      if (moved <= 0) ++done;  // cannot happen; never loop forever
      continue;
    }
    switch (err) {
      case EAGAIN:  // the mm changed under the call: go on from where it stopped
        continue;
      case EEXIST:  // the page where it stopped is there already (a race, or sent twice): skip it
      case ENOENT:  // not mapped any more (the process unmapped it): nothing to fill there
        ++done;
        continue;
      case ESRCH:  // the process (its mm) is gone
        if (gone != nullptr) *gone = true;
        return ok_status();
      default:
        return Error{err, fmt::format("cannot install {} pages at {:#x} into restored pid {}", pages - done, dst, p.pid)};
    }
  }
  return ok_status();
}

}  // namespace

Status lazy_release(LazyProcess& p) {
  Status st = ok_status();
  for (const auto& [start, end] : p.ranges) {
    uffdio_range r{start, end - start};
    // ENOENT/EINVAL: the process unmapped or changed the range; ESRCH: it is gone. Either way
    // there is nothing left to unregister.
    if (::ioctl(p.uffd.get(), UFFDIO_UNREGISTER, &r) != 0 && errno != ENOENT && errno != EINVAL &&
        errno != ESRCH && st.ok())
      st = errno_error("cannot unregister {:#x}-{:#x} of restored pid {} from its userfaultfd", start, end, p.pid);
  }
  p.uffd.reset();
  return st;
}

Status lazy_read_held(pid_t pid, std::uint64_t addr, std::uint64_t pages, std::uint8_t* buf) {
  iovec local{buf, pages * kPage};
  iovec remote{reinterpret_cast<void*>(addr), pages * kPage};
  const ssize_t r = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (r < 0) return errno_error("cannot read {} pages at {:#x} of held pid {}", pages, addr, pid);
  if (static_cast<std::uint64_t>(r) != pages * kPage)
    return make_error("short read of {} pages at {:#x} of held pid {} ({} bytes)", pages, addr, pid, r);
  return ok_status();
}

}  // namespace osmo::ckpt
