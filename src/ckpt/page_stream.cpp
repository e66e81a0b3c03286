// SPDX-License-Identifier: GPL-2.0-or-later
// Page contents: the PAGES sections of an image, written at dump and consumed at restore.
//
// Dump: the page runs chosen by mem_dump are cut into batches of up to kBatchBytes (at most
// kMaxIov runs each). Reader threads take batches in turn: each reads its batch with one
// process_vm_readv into a slot buffer, drops the pages that are all zero, LZ4-compresses the
// section it will become when asked (kept if smaller) and checksums what will be stored; the
// calling thread writes the finished sections strictly in batch
// order. Copying a process's memory is the bulk of a dump (page-table walk plus copy), and one
// CPU does it at ~4 GiB/s here, so it is spread over the CPUs while the output is written; the
// stream stays byte-for-byte what a single thread would write.
//
// Restore: a reader thread takes each PAGES section in order (in place when the image is a mapped
// file, else read into a slot buffer) while filler threads, one per CPU (the calling thread is
// one), check the sections already taken (checksum; a mapped one is first made present in bulk;
// a compressed one is then decoded) and put them into the new process: pages of anonymous
// mappings with
// UFFDIO_COPY through the process's userfaultfd (allocated and filled in one step), others with
// process_vm_writev into memory the process pre-faults itself (mem_restore_layout). Allocating a
// fresh page is the bulk of a restore on this VM and it scales with CPUs (1 GiB: 0.29-0.36 s on
// one, 0.14-0.17 s on two), so sections are filled side by side, in any order: they never overlap.
// Pages that were present but all zero at dump are left to mem_restore_protect, which populates
// them.
//
// Post-copy (lazy_pages.hpp): the dump leaves the lazy pages out of its batches, and the restore
// keeps the userfaultfd open and hands it over (hand_over_lazy) instead of closing it.
#include <linux/userfaultfd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "ckpt/checksum.hpp"
#include "ckpt/faults.hpp"
#include "ckpt/kinds.hpp"
#include "ckpt/lazy_pages.hpp"
#include "ckpt/page_buffer.hpp"

namespace osmo::ckpt {
namespace {

constexpr std::size_t kBatchBytes = 4u << 20;  // page data of one PAGES section at most
constexpr std::size_t kMaxIov = 1024;          // IOV_MAX
constexpr std::size_t kSlots = 4;              // batches in flight between readers and writer

// One PAGES section to be: the runs to read, and (once read) what to write.
struct Batch {
  std::vector<iovec> remote;     // runs to read from the process
  std::vector<PageRun> runs;     // the same, as page runs
  std::size_t bytes = 0;
};

struct Slot {
  std::unique_ptr<PageBuffer> buf;
  Status status = ok_status();
  std::vector<std::uint8_t> table;  // u32 nruns + runs of non-zero pages
  std::vector<std::pair<const void*, std::size_t>> parts;  // table, then data pieces
  std::uint64_t raw_bytes = 0;      // the section's payload: table + data
  std::vector<char> flat, lz4;      // with compression: scratch, and the stored bytes if smaller
  bool compressed = false;
  std::uint64_t checksum = 0;       // of the stored bytes
  std::uint64_t pages = 0;  // non-zero pages in it
};

std::vector<Batch> plan_batches(const std::vector<PageRun>& runs) {
  std::vector<Batch> out;
  std::size_t ri = 0;
  std::uint64_t ri_off = 0;  // pages of runs[ri] already planned
  while (ri < runs.size()) {
    Batch b;
    while (ri < runs.size() && b.bytes < kBatchBytes && b.remote.size() < kMaxIov) {
      std::uint64_t take = std::min<std::uint64_t>(runs[ri].pages - ri_off, (kBatchBytes - b.bytes) / kPageSize);
      std::uint64_t addr = runs[ri].vaddr + ri_off * kPageSize;
      b.remote.push_back({reinterpret_cast<void*>(addr), take * kPageSize});
      b.runs.push_back({addr, take});
      b.bytes += take * kPageSize;
      ri_off += take;
      if (ri_off == runs[ri].pages) {
        ri++;
        ri_off = 0;
      }
    }
    out.push_back(std::move(b));
  }
  return out;
}

// Reads one batch into the slot and prepares its section: [u32 nruns][nruns x {vaddr, pages}]
// then the data of the non-zero pages, pieces pointing into the slot buffer; with compress, LZ4
// here too (on the reader threads, side by side) when it saves space.
// keep_zero (pre-copy): pages the receiver holds a copy of are carried even when all zero, so
// that the receiver never uses its stale copy of a page that was cleared since.
void fill_slot(pid_t pid, const Batch& b, bool compress, const std::vector<PageRun>* keep_zero, Slot& s) {
  iovec local{s.buf->p, b.bytes};
  ssize_t r = process_vm_readv(pid, &local, 1, b.remote.data(), b.remote.size(), 0);
  if (r < 0) {
    s.status = errno_error("cannot read {} bytes of memory of pid {}", b.bytes, pid);
    return;
  }
  if (static_cast<std::size_t>(r) != b.bytes) {
    s.status = make_error("short read of memory of pid {} ({} of {} bytes)", pid, r, b.bytes);
    return;
  }
  std::vector<PageRun> out_runs;
  s.parts.assign(1, {nullptr, 0});  // the table, once known
  s.pages = 0;
  std::size_t off = 0;
  for (const PageRun& br : b.runs) {
    for (std::uint64_t p = 0; p < br.pages; p++, off += kPageSize) {
      const std::uint8_t* page = s.buf->p + off;
      std::uint64_t addr = br.vaddr + p * kPageSize;
      if (page_is_zero(page, kPageSize) && (keep_zero == nullptr || !runs_contain(*keep_zero, addr))) continue;
      auto& last = s.parts.back();
      if (!out_runs.empty() && out_runs.back().vaddr + out_runs.back().pages * kPageSize == addr &&
          static_cast<const std::uint8_t*>(last.first) + last.second == page) {
        out_runs.back().pages++;
        last.second += kPageSize;
      } else {
        out_runs.push_back({addr, 1});
        s.parts.push_back({page, kPageSize});
      }
      s.pages++;
    }
  }
  auto n = static_cast<std::uint32_t>(out_runs.size());
  s.table.resize(4 + out_runs.size() * 16);
  std::memcpy(s.table.data(), &n, 4);
  if (n > 0) std::memcpy(s.table.data() + 4, out_runs.data(), out_runs.size() * 16);
  s.parts[0] = {s.table.data(), s.table.size()};
  s.raw_bytes = s.table.size() + s.pages * kPageSize;
  s.compressed = compress && s.pages > 0 && compress_payload(s.parts, s.raw_bytes, &s.flat, &s.lz4);
  if (s.compressed) {
    s.checksum = checksum64(s.lz4.data(), s.lz4.size());
  } else {
    Checksum sum;
    for (auto& [p, len] : s.parts) sum.update(p, len);
    s.checksum = sum.digest();
  }
  s.status = ok_status();
}

// Slots handed from producers to consumers: item i goes to slot i % kSlots once every item up to
// i - kSlots has been consumed (consumers may finish items out of order; the watermark only moves
// over a gap-free prefix). Which producer or consumer takes which item is the caller's business;
// a failure is put in the slot and ends the stream, and whoever leaves early stops the others
// (stop()).
constexpr std::array<std::size_t, kSlots> filled_array(std::size_t v) {
  std::array<std::size_t, kSlots> a{};
  for (std::size_t& x : a) x = v;
  return a;
}

template <typename SlotT>
class OrderedSlots {
 public:
  SlotT& slot(std::size_t i) { return slots_[i % kSlots]; }

  // Producer: waits until item i may be written into its slot; false when stopping.
  bool wait_free(std::size_t i) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return stop_ || i < consumed_ + kSlots; });
    return !stop_;
  }
  void publish(std::size_t i) {
    {
      std::lock_guard<std::mutex> l(mu_);
      ready_[i % kSlots] = i;
    }
    cv_.notify_all();
  }
  // Consumer: waits for item i (nullptr when stopping); then releases it.
  SlotT* wait_ready(std::size_t i) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return stop_ || ready_[i % kSlots] == i; });
    return ready_[i % kSlots] == i ? &slots_[i % kSlots] : nullptr;
  }
  void release(std::size_t i) {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_[i % kSlots] = i;
      while (done_[consumed_ % kSlots] == consumed_) consumed_++;
    }
    cv_.notify_all();
  }
  void stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
  }

 private:
  SlotT slots_[kSlots];
  std::array<std::size_t, kSlots> ready_ = filled_array(SIZE_MAX);  // item in each slot, once published
  std::array<std::size_t, kSlots> done_ = filled_array(SIZE_MAX);   // item in each slot, once consumed
  std::size_t consumed_ = 0;  // items 0 .. consumed_ - 1 are all consumed
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
};

// Threads that are stopped and joined however the scope is left.
class Workers {
 public:
  explicit Workers(std::function<void()> on_stop) : on_stop_(std::move(on_stop)) {}
  ~Workers() {
    on_stop_();
    for (std::thread& t : threads_) t.join();
  }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;
  // False when no thread could be made (EAGAIN under a pids limit or RLIMIT_NPROC): the caller
  // goes on with fewer threads or fails with an error, never with an exception.
  template <typename F>
  bool start(F f) {
    try {
      threads_.emplace_back(std::move(f));
      return true;
    } catch (const std::system_error&) {
      return false;
    }
  }
  // Waits for the threads to end by themselves.
  void join() {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::function<void()> on_stop_;
  std::vector<std::thread> threads_;
};

// CPUs this process may run on (its affinity mask, which a cpuset narrows), at least 1.
unsigned usable_cpus() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
}

}  // namespace

Status mem_write_pages(DumpContext& c, ImageWriter& w, CheckpointStats* stats) {
  // Post-copy: the lazy pages stay out of the image; the holder sends them later.
  std::vector<PageRun> lazy;
  if (c.options->lazy_anonymous_pages) lazy = lazy_runs(*c.img);
  std::vector<PageRun> carried = lazy.empty() ? c.img->mem.runs : runs_minus(c.img->mem.runs, lazy);
  // Pre-copy: the receiver's clean copies stay out (asked now: the process is stopped, so what
  // is clean stays clean until it runs again).
  PrecopiedPages pre;
  if (c.options->precopied) {
    OSMO_ASSIGN_OR_RETURN(pre, c.options->precopied(c.pid));
    if (!pre.clean.empty()) {
      const std::uint64_t before = runs_pages(carried);
      carried = runs_minus(carried, pre.clean);
      if (stats != nullptr) stats->pages_precopied += before - runs_pages(carried);
    }
  }
  const std::vector<PageRun>* keep_zero = pre.held.empty() ? nullptr : &pre.held;
  std::vector<Batch> batches = plan_batches(carried);
  if (stats != nullptr) {
    stats->image_pid = c.img->task.pid;
    stats->lazy_runs = lazy;
  }
  std::uint64_t scanned = 0, written = 0;
  if (!batches.empty()) {
    std::size_t buf_bytes = 0;
    for (const Batch& b : batches) buf_bytes = std::max(buf_bytes, b.bytes);
    auto slots = std::make_unique<OrderedSlots<Slot>>();
    for (std::size_t i = 0; i < kSlots; i++) {
      slots->slot(i).buf = std::make_unique<PageBuffer>(buf_bytes);
      if (slots->slot(i).buf->p == nullptr)
        return errno_error("cannot allocate {} page buffers of {} bytes", kSlots, buf_bytes);
    }
    // As many readers as CPUs (the writer mostly waits on them), never more than batches.
    auto nthreads = static_cast<unsigned>(std::min<std::size_t>({usable_cpus(), batches.size(), kSlots}));
    std::atomic<std::size_t> next{0};
    Workers readers([&] { slots->stop(); });
    unsigned started = 0;
    for (unsigned t = 0; t < nthreads; t++)
      started += readers.start([&] {
        for (std::size_t i = next.fetch_add(1); i < batches.size(); i = next.fetch_add(1)) {
          if (!slots->wait_free(i)) return;
          fill_slot(c.pid, batches[i], w.compressing(), keep_zero, slots->slot(i));
          slots->publish(i);
        }
      });
    if (started == 0) return errno_error("cannot start a thread to read the memory of pid {}", c.pid);
    for (std::size_t i = 0; i < batches.size(); i++) {
      Slot& s = *slots->wait_ready(i);  // never stopped while this thread waits
      if (!s.status.ok()) return s.status;
      if (s.compressed)
        OSMO_TRY(w.write_compressed_section(SectionType::kPages, s.lz4.data(), s.lz4.size(), s.raw_bytes, s.checksum));
      else if (s.pages > 0)
        OSMO_TRY(w.write_section_checksummed(SectionType::kPages, s.parts, s.checksum));
      scanned += batches[i].bytes / kPageSize;
      written += s.pages;
      slots->release(i);
      if (i == 0) OSMO_TRY(fault("dump.pages"));
    }
  }
  c.img->mem.pages_written = written;
  if (stats != nullptr) {
    stats->pages_scanned = scanned;
    stats->pages_written = written;
  }
  return ok_status();
}

namespace {

// One PAGES section read back: its payload as taken by the reader thread (unchecked), then,
// once a filler checked it, where its pages go and their data.
struct InSlot {
  std::unique_ptr<PageBuffer> buf;      // stored bytes of a stream (made on first use: a mapped image needs none)
  std::unique_ptr<PageBuffer> decoded;  // a compressed section's payload (made on first use)
  std::size_t buf_bytes = 0;            // the size of either
  UncheckedPayload payload;
  std::vector<iovec> remote;
  const std::uint8_t* data = nullptr;
  std::uint64_t data_bytes = 0;
  bool last = false;                 // no section in this slot: the stream of pages ended
  Result<SectionHeader> next{SectionHeader{}};  // when last: the header after the pages, or the error
};

// Reader side: takes one PAGES section (header h, already read) into the slot, unchecked. A
// mapped image is used in place (no copy); a stream is read into the slot's buffer.
Status take_pages_section(ImageReader& r, const SectionHeader& h, InSlot& s) {
  if (h.raw_length > s.buf_bytes || h.length > s.buf_bytes)
    return make_error("image corrupted: PAGES section of {} bytes ({} stored)", h.raw_length, h.length);
  auto made = [&](std::unique_ptr<PageBuffer>& b) -> Status {
    if (!b) {
      b = std::make_unique<PageBuffer>(s.buf_bytes);
      if (b->p == nullptr) return errno_error("cannot allocate a {}-byte page buffer", s.buf_bytes);
    }
    return ok_status();
  };
  if (!r.mapped()) OSMO_TRY(made(s.buf));
  if (h.flags & kSectionLz4) OSMO_TRY(made(s.decoded));
  OSMO_ASSIGN_OR_RETURN(s.payload, r.take_payload_unchecked(s.buf ? s.buf->p : nullptr, s.buf ? s.buf_bytes : 0,
                                                            s.decoded ? s.decoded->p : nullptr,
                                                            s.decoded ? s.buf_bytes : 0));
  return ok_status();
}

// Filler side: checks the section and decodes its run table.
Status decode_pages_section(InSlot& s) {
  OSMO_TRY(s.payload.check());
  const std::uint8_t* p = s.payload.data;
  std::uint64_t len = s.payload.length;
  if (len < 4) return make_error("image corrupted: PAGES section of {} bytes", len);
  std::uint32_t n;
  std::memcpy(&n, p, 4);
  std::size_t table = 4 + static_cast<std::size_t>(n) * 16;
  if (table > len) return make_error("image corrupted: PAGES section claims {} runs", n);
  s.data_bytes = len - table;
  s.data = p + table;
  s.remote.clear();
  std::uint64_t sum = 0;
  for (std::uint32_t i = 0; i < n; i++) {
    PageRun run;
    std::memcpy(&run, p + 4 + i * 16, 16);
    s.remote.push_back({reinterpret_cast<void*>(run.vaddr), run.pages * kPageSize});
    sum += run.pages * kPageSize;
  }
  if (sum != s.data_bytes)
    return make_error("image corrupted: PAGES section runs cover {} bytes, it holds {}", sum, s.data_bytes);
  return ok_status();
}

// Fills [dst, dst + len) of the restored process's registered anonymous memory from src.
Status uffd_copy(const RestoreContext& c, std::uint64_t dst, const std::uint8_t* src, std::uint64_t len) {
  while (len > 0) {
    uffdio_copy cp{};
    cp.dst = dst;
    cp.src = reinterpret_cast<std::uint64_t>(src);
    cp.len = len;
    int rc = ::ioctl(c.uffd.get(), UFFDIO_COPY, &cp);
    // A partial copy (EAGAIN when the mm changed under it) reports what it did in cp.copy.
    std::uint64_t done = cp.copy > 0 ? static_cast<std::uint64_t>(cp.copy) : 0;
    if (rc != 0 && errno != EAGAIN)
      return errno_error("cannot fill {} bytes at {:#x} of restored pid {} (UFFDIO_COPY)", len, dst, c.pid);
    dst += done;
    src += done;
    len -= done;
  }
  return ok_status();
}

// Writes one section into the process: runs inside registered anonymous mappings with
// UFFDIO_COPY (split where a run crosses into another mapping), the rest with
// process_vm_writev. Pages filled through the userfaultfd are recorded in *filled.
Status write_pages_section(const RestoreContext& c, const InSlot& s, std::vector<PageRun>* filled) {
  std::vector<iovec> remote;
  std::vector<iovec> local;
  auto flush = [&]() -> Status {
    for (std::size_t i = 0; i < remote.size(); i += kMaxIov) {
      std::size_t cnt = std::min(kMaxIov, remote.size() - i);
      std::size_t bytes = 0;
      for (std::size_t k = i; k < i + cnt; k++) bytes += remote[k].iov_len;
      ssize_t w = process_vm_writev(c.pid, local.data() + i, cnt, remote.data() + i, cnt, 0);
      if (w < 0 || static_cast<std::size_t>(w) != bytes)
        return errno_error("cannot write {} bytes of pages at {:#x} into restored pid {}", bytes,
                           reinterpret_cast<std::uint64_t>(remote[i].iov_base), c.pid);
    }
    remote.clear();
    local.clear();
    return ok_status();
  };
  const std::uint8_t* data = s.data;
  for (const iovec& run : s.remote) {
    auto addr = reinterpret_cast<std::uint64_t>(run.iov_base);
    std::uint64_t end = addr + run.iov_len;
    while (addr < end) {
      // The registered range holding addr, or the next one above it, bounds this piece.
      std::uint64_t next_start = 0;
      const auto* range = c.uffd_range_at(addr, &next_start);
      bool registered = range != nullptr;
      std::uint64_t piece_end = std::min(end, registered ? range->second : next_start);
      std::uint64_t len = piece_end - addr;
      // Pre-copy also needs to know which pages the image wrote outside registered memory:
      // the page store must not overwrite them.
      if (registered || c.page_store != nullptr) {
        if (!filled->empty() && filled->back().vaddr + filled->back().pages * kPageSize == addr)
          filled->back().pages += len / kPageSize;
        else
          filled->push_back({addr, len / kPageSize});
      }
      if (registered) {
        OSMO_TRY(uffd_copy(c, addr, data, len));
      } else {
        remote.push_back({reinterpret_cast<void*>(addr), len});
        local.push_back({const_cast<std::uint8_t*>(data), len});
      }
      data += len;
      addr = piece_end;
    }
  }
  return flush();
}

// The pages of registered ranges that the populate plan has but no section filled: pages that
// were all zero at dump.
std::vector<PageRun> unfilled_runs(const RestoreContext& c, const std::vector<PageRun>& filled) {
  std::vector<PageRun> out;
  std::size_t f = 0;
  for (const PageRun& r : c.img->mem.runs) {
    if (c.uffd_range_at(r.vaddr) == nullptr) continue;
    std::uint64_t a = r.vaddr, end = r.vaddr + r.pages * kPageSize;
    while (a < end) {
      while (f < filled.size() && filled[f].vaddr + filled[f].pages * kPageSize <= a) f++;
      std::uint64_t next_filled = f < filled.size() ? filled[f].vaddr : end;
      if (next_filled > a) {
        std::uint64_t hole_end = std::min(end, next_filled);
        out.push_back({a, (hole_end - a) / kPageSize});
        a = hole_end;
      } else {
        a = std::min(end, filled[f].vaddr + filled[f].pages * kPageSize);
      }
    }
  }
  return out;
}

// Pre-copy (RestoreOptions::page_store): the pages of the populate plan that no section filled
// and the store holds are filled from the store, through the same paths as a section's pages,
// straight from the store's memory (pages that lie one after the other there, as a round's pages
// in address order do, go in one call); they are added to *filled (sorted on return).
Status fill_from_store(const RestoreContext& c, std::vector<PageRun>* filled) {
  std::sort(filled->begin(), filled->end(), [](const PageRun& a, const PageRun& b) { return a.vaddr < b.vaddr; });
  const std::vector<PageRun> held = c.page_store->runs(c.img->task.pid);
  if (held.empty()) return ok_status();
  // plan ∩ held, less what the image filled.
  const std::vector<PageRun> in_plan = runs_minus(c.img->mem.runs, runs_minus(c.img->mem.runs, held));
  const std::vector<PageRun> want = runs_minus(in_plan, *filled);
  if (want.empty()) return ok_status();
  InSlot s;
  std::vector<PageRun> done;
  std::uint64_t piece_addr = 0, piece_len = 0;
  const std::uint8_t* piece_src = nullptr;
  auto flush = [&]() -> Status {
    if (piece_len == 0) return ok_status();
    s.remote.assign(1, {reinterpret_cast<void*>(piece_addr), piece_len});
    s.data = piece_src;
    s.data_bytes = piece_len;
    OSMO_TRY(write_pages_section(c, s, &done));
    piece_len = 0;
    return ok_status();
  };
  for (const PageRun& r : want) {
    for (std::uint64_t p = 0; p < r.pages; p++) {
      const std::uint64_t addr = r.vaddr + p * kPageSize;
      const std::uint8_t* src = c.page_store->page(c.img->task.pid, addr);
      if (src == nullptr) return make_error("the page store lost page {:#x} of image pid {}", addr, c.img->task.pid);
      if (piece_len > 0 && piece_addr + piece_len == addr && piece_src + piece_len == src && piece_len < kBatchBytes) {
        piece_len += kPageSize;
        continue;
      }
      OSMO_TRY(flush());
      piece_addr = addr;
      piece_src = src;
      piece_len = kPageSize;
    }
  }
  OSMO_TRY(flush());
  filled->insert(filled->end(), done.begin(), done.end());
  std::sort(filled->begin(), filled->end(), [](const PageRun& a, const PageRun& b) { return a.vaddr < b.vaddr; });
  return ok_status();
}

// Ends the userfaultfd phase: the ranges are unregistered (the mappings become ordinary
// anonymous memory again) and the fd is closed.
Status close_uffd(RestoreContext& c) {
  for (const auto& [start, end] : c.uffd_ranges) {
    uffdio_range r{start, end - start};
    if (::ioctl(c.uffd.get(), UFFDIO_UNREGISTER, &r) != 0)
      return errno_error("cannot unregister {:#x}-{:#x} of restored pid {} from its userfaultfd", start, end,
                         c.pid);
  }
  c.uffd.reset();
  return ok_status();
}

// Post-copy: the registered pages the image did not fill are the lazy ones (left missing for
// the caller) and eager ones that were all zero at dump: those get zero pages now, through the
// userfaultfd (a populate would wait on a fault nobody serves yet). The userfaultfd then goes
// to the caller with the ranges and the lazy runs.
Status hand_over_lazy(RestoreContext& c, const std::vector<PageRun>& unfilled) {
  LazyProcess p;
  p.pid = c.pid;
  p.image_pid = c.img->task.pid;
  p.uffd = std::move(c.uffd);
  p.ranges = c.uffd_ranges;
  p.runs = lazy_runs(*c.img);
  for (const PageRun& z : runs_minus(unfilled, p.runs)) {
    bool gone = false;
    OSMO_TRY(lazy_install(p, z.vaddr, nullptr, z.pages, nullptr, &gone));
    if (gone) return make_error("restored pid {} vanished while its pages were filled", c.pid);
  }
  c.lazy->processes.push_back(std::move(p));
  return ok_status();
}

}  // namespace

// A reader thread takes sections (reads them, or points into a mapped image) while filler
// threads (this one and one more per further CPU) check them and put them into the process.
Result<SectionHeader> mem_restore_pages(RestoreContext& c, ImageReader& r, SectionHeader h) {
  std::vector<PageRun> filled;
  auto finish = [&]() -> Status {
    if (c.page_store != nullptr) OSMO_TRY(fill_from_store(c, &filled));
    if (!c.uffd) return ok_status();
    std::sort(filled.begin(), filled.end(), [](const PageRun& a, const PageRun& b) { return a.vaddr < b.vaddr; });
    if (c.lazy != nullptr) return hand_over_lazy(c, unfilled_runs(c, filled));
    c.zero_runs = unfilled_runs(c, filled);
    return close_uffd(c);
  };
  if (h.type != SectionType::kPages) {
    OSMO_TRY(finish());
    return h;
  }
  std::uint64_t total_pages = 0;
  for (const PageRun& run : c.img->mem.runs) total_pages += run.pages;
  // A section holds at most kBatchBytes of pages plus its run table (16 bytes per run, at most
  // one run per page).
  std::uint64_t data_max = std::clamp<std::uint64_t>(total_pages * kPageSize, kPageSize, kBatchBytes);
  auto slots = std::make_unique<OrderedSlots<InSlot>>();
  for (std::size_t i = 0; i < kSlots; i++)
    slots->slot(i).buf_bytes = static_cast<std::size_t>(data_max + 4 + data_max / kPageSize * 16);

  // What the fillers share: the next item to take, the failure of the earliest item (so the
  // message does not depend on timing), the item that ended the pages (a slot marked last,
  // holding what followed them). Either stops everyone: items before the last one are all
  // published by then, so a filler still waiting for one gets it; after a failure nobody starts
  // another item.
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status failure = ok_status();
  std::size_t failed_item = SIZE_MAX;
  std::uint64_t pages = 0;
  std::size_t last_item = SIZE_MAX;
  const RestoreContext& cc = c;
  auto fill = [&](std::vector<PageRun>* my_filled) {
    std::uint64_t my_pages = 0;
    Status st = ok_status();
    std::size_t i = next.fetch_add(1);
    for (; !failed.load(std::memory_order_relaxed); i = next.fetch_add(1)) {
      InSlot* s = slots->wait_ready(i);
      if (s == nullptr) break;  // stopped: the end or a failure was seen by another filler
      if (s->last) {
        std::lock_guard<std::mutex> l(mu);
        last_item = i;
        break;
      }
      st = decode_pages_section(*s);
      if (st.ok()) st = write_pages_section(cc, *s, my_filled);
      if (st.ok() && i == 0) st = fault("restore.pages");
      if (!st.ok()) break;
      my_pages += s->data_bytes / kPageSize;
      slots->release(i);
    }
    {
      std::lock_guard<std::mutex> l(mu);
      pages += my_pages;
      if (!st.ok() && i < failed_item) {
        failure = st;
        failed_item = i;
        failed.store(true, std::memory_order_relaxed);
      }
    }
    slots->stop();
  };
  // Per helper filler: the pages it filled through the userfaultfd. Declared before the threads,
  // which are joined before it goes, however this function is left.
  std::vector<std::vector<PageRun>> helper_filled(std::min<std::size_t>(usable_cpus(), kSlots - 1) - 1);

  Workers threads([&] { slots->stop(); });
  bool reader_started = threads.start([&] {
    Result<SectionHeader> cur = h;
    for (std::size_t i = 0;; i++) {
      if (!slots->wait_free(i)) return;
      InSlot& s = slots->slot(i);
      // The item this slot held was consumed, and every one before it: their part of a mapped
      // image can go (here, beside the critical path).
      if (s.payload.in_mapping) r.release_before(s.payload.stored + s.payload.stored_length);
      s.payload = UncheckedPayload{};
      s.last = !cur.ok() || cur->type != SectionType::kPages;
      if (!s.last) {
        Status st = take_pages_section(r, *cur, s);
        if (st.ok()) {
          cur = r.next();  // an error here is reported after this section is written
        } else {
          s.last = true;
          cur = st.error();
        }
      }
      if (s.last) s.next = cur;
      slots->publish(i);
      if (s.last) return;
    }
  });
  if (!reader_started) return errno_error("cannot start the thread reading the image's pages");
  for (auto& hf : helper_filled)
    if (!threads.start([&] { fill(&hf); })) break;  // fewer fillers: slower, not wrong
  fill(&filled);
  threads.join();
  if (!failure.ok()) return failure.error();
  if (last_item == SIZE_MAX) return make_error("restore of pages stopped before their end");  // cannot happen
  c.pages_written += pages;
  for (auto& hf : helper_filled) filled.insert(filled.end(), hf.begin(), hf.end());
  const Result<SectionHeader>& after = slots->slot(last_item).next;
  if (after.ok()) OSMO_TRY(finish());
  return after;
}

}  // namespace osmo::ckpt
