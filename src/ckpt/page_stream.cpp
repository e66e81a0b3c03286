// Page contents: the PAGES sections of an image, written at dump and consumed at restore.
//
// Dump: the page runs chosen by mem_dump are cut into batches of up to kBatchBytes (at most
// kMaxIov runs each). Reader threads take batches in turn: each reads its batch with one
// process_vm_readv into a slot buffer, drops the pages that are all zero, and checksums the
// section it will become; the calling thread writes the finished sections strictly in batch
// order. Copying a process's memory is the bulk of a dump (page-table walk plus copy), and one
// CPU does it at ~4 GiB/s here, so it is spread over the CPUs while the output is written; the
// stream stays byte-for-byte what a single thread would write.
//
// Restore: a reader thread verifies each PAGES section (in place when the image is a mapped file,
// else read into a slot buffer) while the calling thread puts the previous one into the new
// process: pages of anonymous mappings with UFFDIO_COPY through the process's userfaultfd
// (allocated and filled in one step), others with process_vm_writev into memory the process
// pre-faults itself (mem_restore_layout). Pages that were present but all zero at dump are left
// to mem_restore_protect, which populates them.
#include <linux/userfaultfd.h>
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
#include <thread>

#include "ckpt/checksum.hpp"
#include "ckpt/faults.hpp"
#include "ckpt/kinds.hpp"
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
  std::uint64_t checksum = 0;
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
// then the data of the non-zero pages, pieces pointing into the slot buffer.
void fill_slot(pid_t pid, const Batch& b, Slot& s) {
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
      if (page_is_zero(page, kPageSize)) continue;
      std::uint64_t addr = br.vaddr + p * kPageSize;
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
  Checksum sum;
  for (auto& [p, len] : s.parts) sum.update(p, len);
  s.checksum = sum.digest();
  s.status = ok_status();
}

// Slots handed from producers to one consumer in order: item i goes to slot i % kSlots once
// item i - kSlots has been consumed. Which producer takes which item is the caller's business; a
// failure is put in the slot and ends the stream for the consumer, whose early return stops the
// producers (stop()).
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
  // Consumer: waits for item i; then releases it.
  SlotT& wait_ready(std::size_t i) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return ready_[i % kSlots] == i; });
    return slots_[i % kSlots];
  }
  void release(std::size_t i) {
    {
      std::lock_guard<std::mutex> l(mu_);
      consumed_ = i + 1;
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
  std::size_t consumed_ = 0;
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
  template <typename F>
  void start(F f) {
    threads_.emplace_back(std::move(f));
  }

 private:
  std::function<void()> on_stop_;
  std::vector<std::thread> threads_;
};

}  // namespace

Status mem_write_pages(DumpContext& c, ImageWriter& w, CheckpointStats* stats) {
  std::vector<Batch> batches = plan_batches(c.img->mem.runs);
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
    unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    auto nthreads = static_cast<unsigned>(std::min<std::size_t>({cpus, batches.size(), kSlots}));
    std::atomic<std::size_t> next{0};
    Workers readers([&] { slots->stop(); });
    for (unsigned t = 0; t < nthreads; t++)
      readers.start([&] {
        for (std::size_t i = next.fetch_add(1); i < batches.size(); i = next.fetch_add(1)) {
          if (!slots->wait_free(i)) return;
          fill_slot(c.pid, batches[i], slots->slot(i));
          slots->publish(i);
        }
      });
    for (std::size_t i = 0; i < batches.size(); i++) {
      Slot& s = slots->wait_ready(i);
      if (!s.status.ok()) return s.status;
      if (s.pages > 0) {
        if (w.compressing())
          OSMO_TRY(w.write_section(SectionType::kPages, s.parts, true));
        else
          OSMO_TRY(w.write_section_checksummed(SectionType::kPages, s.parts, s.checksum));
      }
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

// One PAGES section read back: where its pages go and their data.
struct InSlot {
  std::unique_ptr<PageBuffer> buf;  // made on first use: a mapped image needs none
  std::size_t buf_bytes = 0;
  std::vector<iovec> remote;
  const std::uint8_t* data = nullptr;
  std::uint64_t data_bytes = 0;
  bool last = false;                 // no section in this slot: the stream of pages ended
  Result<SectionHeader> next{SectionHeader{}};  // when last: the header after the pages, or the error
};

// Reads, verifies and decodes one PAGES section (header h, already read) into the slot.
// A mapped image is used in place (no copy); a stream is read into the slot's buffer.
Status read_pages_section(ImageReader& r, const SectionHeader& h, InSlot& s) {
  OSMO_ASSIGN_OR_RETURN(const std::uint8_t* p, r.payload_view());
  if (p == nullptr) {
    if (h.raw_length > s.buf_bytes) return make_error("image corrupted: PAGES section of {} bytes", h.raw_length);
    if (!s.buf) {
      s.buf = std::make_unique<PageBuffer>(s.buf_bytes);
      if (s.buf->p == nullptr) return errno_error("cannot allocate a {}-byte page buffer", s.buf_bytes);
    }
    OSMO_TRY(r.read_payload_into(s.buf->p, h.raw_length));
    p = s.buf->p;
  } else if (h.raw_length > s.buf_bytes) {
    return make_error("image corrupted: PAGES section of {} bytes", h.raw_length);
  }
  std::uint32_t n;
  std::memcpy(&n, p, 4);
  std::size_t table = 4 + static_cast<std::size_t>(n) * 16;
  if (table > h.raw_length) return make_error("image corrupted: PAGES section claims {} runs", n);
  s.data_bytes = h.raw_length - table;
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
Status write_pages_section(RestoreContext& c, const InSlot& s, std::vector<PageRun>* filled) {
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
      if (registered) {
        OSMO_TRY(uffd_copy(c, addr, data, len));
        if (!filled->empty() && filled->back().vaddr + filled->back().pages * kPageSize == addr)
          filled->back().pages += len / kPageSize;
        else
          filled->push_back({addr, len / kPageSize});
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

}  // namespace

// A reader thread reads (or, for a mapped image, maps) and verifies sections while this thread
// puts the previous ones into the process.
Result<SectionHeader> mem_restore_pages(RestoreContext& c, ImageReader& r, SectionHeader h) {
  std::vector<PageRun> filled;
  auto finish = [&]() -> Status {
    if (!c.uffd) return ok_status();
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
  Workers reader([&] { slots->stop(); });
  reader.start([&] {
    Result<SectionHeader> cur = h;
    for (std::size_t i = 0;; i++) {
      if (!slots->wait_free(i)) return;
      InSlot& s = slots->slot(i);
      // The item this slot held was consumed, and every one before it: their part of a mapped
      // image can go (here, beside the critical path).
      if (s.data != nullptr && r.mapped()) r.release_before(s.data + s.data_bytes);
      s.last = !cur.ok() || cur->type != SectionType::kPages;
      if (!s.last) {
        Status st = read_pages_section(r, *cur, s);
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
  for (std::size_t i = 0;; i++) {
    InSlot& s = slots->wait_ready(i);
    if (s.last) {
      if (s.next.ok()) OSMO_TRY(finish());
      return s.next;
    }
    OSMO_TRY(write_pages_section(c, s, &filled));
    c.pages_written += s.data_bytes / kPageSize;
    slots->release(i);
    if (i == 0) OSMO_TRY(fault("restore.pages"));
  }
}

}  // namespace osmo::ckpt
