// SPDX-License-Identifier: GPL-2.0-or-later
// Post-copy's page traffic (see postcopy.hpp).
#include "migrate/postcopy.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "base/fault.hpp"

namespace osmo::migrate {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
constexpr std::uint64_t kPage = 4096;
constexpr std::size_t kPagesHeader = 16;
constexpr std::size_t kRequestBytes = 16;

double ms_since(SteadyClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
}

void put32(std::uint8_t* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
void put64(std::uint8_t* p, std::uint64_t v) { std::memcpy(p, &v, 8); }
std::uint32_t get32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

bool all_zero(const std::uint8_t* p) {
  static const std::uint8_t kZero[kPage] = {};
  return std::memcmp(p, kZero, kPage) == 0;
}

Status send_json(int fd, wire::ChunkSealer& sealer, const Json& j) { return sealer.write_message(fd, j.dump()); }

struct Request {
  std::int32_t image_pid;
  std::uint32_t pages;
  std::uint64_t addr;
};

// The source's view of one held process: its lazy runs and which pages went out already.
class HeldState {
 public:
  explicit HeldState(const HeldPages& h) : h_(h) {
    std::uint64_t n = 0;
    for (const ckpt::PageRun& r : h.runs) {
      first_.push_back(n);
      n += r.pages;
    }
    sent_.assign(n, false);
  }
  const HeldPages& held() const { return h_; }
  // Index of the lazy page at addr, or -1 when it is not a lazy page.
  std::int64_t index(std::uint64_t addr) const {
    auto it = std::upper_bound(h_.runs.begin(), h_.runs.end(), addr,
                               [](std::uint64_t a, const ckpt::PageRun& r) { return a < r.vaddr; });
    if (it == h_.runs.begin()) return -1;
    --it;
    if (addr >= it->vaddr + it->pages * kPage) return -1;
    const auto ri = static_cast<std::size_t>(it - h_.runs.begin());
    return static_cast<std::int64_t>(first_[ri] + (addr - it->vaddr) / kPage);
  }
  void mark(std::int64_t i) {
    if (i >= 0 && !sent_[static_cast<std::size_t>(i)]) {
      sent_[static_cast<std::size_t>(i)] = true;
      ++sent_count_;
    }
  }
  // The next run of unsent lazy pages (at most max), or false when all went out.
  bool next_unsent(std::uint32_t max, std::uint64_t* addr, std::uint32_t* pages) {
    while (run_ < h_.runs.size()) {
      const ckpt::PageRun& r = h_.runs[run_];
      while (off_ < r.pages && sent_[first_[run_] + off_]) ++off_;
      if (off_ == r.pages) {
        ++run_;
        off_ = 0;
        continue;
      }
      std::uint64_t n = 0;
      while (off_ + n < r.pages && n < max && !sent_[first_[run_] + off_ + n]) ++n;
      *addr = r.vaddr + off_ * kPage;
      *pages = static_cast<std::uint32_t>(n);
      off_ += n;
      return true;
    }
    return false;
  }

 private:
  const HeldPages& h_;
  std::vector<std::uint64_t> first_;  // per run: index of its first page
  std::vector<bool> sent_;
  std::uint64_t sent_count_ = 0;
  std::size_t run_ = 0;
  std::uint64_t off_ = 0;
};

}  // namespace

Result<Json> serve_lazy_pages(int fd, wire::ChunkSealer& sealer, wire::ChunkOpener& opener,
                              const std::vector<HeldPages>& held, int answer_ms) {
  const auto t0 = SteadyClock::now();
  std::vector<HeldState> states;
  states.reserve(held.size());
  for (const HeldPages& h : held) states.emplace_back(h);
  auto state_of = [&](std::int32_t image_pid) -> HeldState* {
    for (HeldState& s : states)
      if (s.held().image_pid == image_pid) return &s;
    return nullptr;
  };

  // The target's side of the stream, on a thread of its own: requests and its final word.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Request> requests;
  bool done = false;
  Status failed = ok_status();
  Json target_report;
  std::thread reader([&] {
    wire::Chunk c;
    for (;;) {
      Status st = opener.read(fd, &c);
      std::lock_guard<std::mutex> l(mu);
      if (!st.ok()) {
        if (!done && failed.ok()) failed = make_error("lost the target during post-copy: {}", st.error().str());
        break;
      }
      if (c.type == wire::ChunkType::kData) {
        for (std::size_t off = 0; off + kRequestBytes <= c.payload.size(); off += kRequestBytes)
          requests.push_back({static_cast<std::int32_t>(get32(&c.payload[off])), get32(&c.payload[off + 4]),
                              get64(&c.payload[off + 8])});
      } else if (c.type == wire::ChunkType::kMessage) {
        Json m = Json::parse(c.payload.begin(), c.payload.end(), nullptr, false);
        const std::string t = m.is_object() ? m.value("t", "") : "";
        if (t == "pages-in") {
          target_report = m;
          done = true;
        } else {
          failed = make_error("the target gave up during post-copy: {}",
                              m.is_object() ? m.value("error", t) : std::string("(not JSON)"));
        }
      }
      cv.notify_all();
      if (done || !failed.ok()) break;
    }
    cv.notify_all();
  });

  // Fault point for the tests of a failure during post-copy: pushes slowly (40 ms per chunk, a
  // GiB then takes 40 s) so that a link can be cut while pages are still on their way.
  const bool slow = fault_armed("migrate.slow_postcopy");
  std::vector<std::uint8_t> buf(kPagesHeader + kLazyChunkPages + kLazyChunkPages * kPage);
  std::uint64_t pushed = 0, requested = 0, zero = 0, bytes = 0;
  // Sends pages [addr, addr + n) of one process: lazy ones read from the original, others (pages
  // never present at the freeze, which a fault may still touch) as zero pages.
  auto send_range = [&](HeldState& s, std::uint64_t addr, std::uint32_t n, bool asked) -> Status {
    n = std::min(n, kLazyChunkPages);
    std::uint8_t* flags = buf.data() + kPagesHeader;
    std::uint8_t* data = flags + n;
    for (std::uint32_t i = 0; i < n;) {
      if (s.index(addr + i * kPage) < 0) {
        flags[i++] = 1;
        continue;
      }
      std::uint32_t k = 1;
      while (i + k < n && s.index(addr + (i + k) * kPage) >= 0) ++k;
      OSMO_TRY(ckpt::lazy_read_held(s.held().pid, addr + i * kPage, k, data + i * kPage));
      for (std::uint32_t j = i; j < i + k; ++j) flags[j] = all_zero(data + j * kPage) ? 1 : 0;
      i += k;
    }
    // Zero pages carry no data: close the gaps.
    std::size_t out = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      s.mark(s.index(addr + i * kPage));
      if (flags[i] != 0) {
        ++zero;
        continue;
      }
      if (out != i) std::memmove(data + out * kPage, data + i * kPage, kPage);
      ++out;
    }
    put32(buf.data(), static_cast<std::uint32_t>(s.held().image_pid));
    put32(buf.data() + 4, n);
    put64(buf.data() + 8, addr);
    const std::size_t len = kPagesHeader + n + out * kPage;
    OSMO_TRY(sealer.write(fd, wire::ChunkType::kData, {buf.data(), len}));
    (asked ? requested : pushed) += n;
    bytes += len;
    return ok_status();
  };

  Status result = [&]() -> Status {
    std::size_t next_state = 0;
    bool all_sent = false;
    for (;;) {
      Request r{};
      bool have = false;
      {
        std::unique_lock<std::mutex> l(mu);
        if (all_sent) {
          // Everything went out: wait for the target's word.
          if (!cv.wait_for(l, std::chrono::milliseconds(answer_ms), [&] { return done || !failed.ok(); }))
            return make_error("the target did not confirm the pages within {} ms", answer_ms);
        }
        if (!failed.ok()) return failed;
        if (done) return ok_status();
        if (!requests.empty()) {
          r = requests.front();
          requests.pop_front();
          have = true;
        }
      }
      if (have) {
        if (HeldState* s = state_of(r.image_pid); s != nullptr && r.pages > 0) OSMO_TRY(send_range(*s, r.addr, r.pages, true));
        continue;
      }
      if (all_sent) continue;
      std::uint64_t addr = 0;
      std::uint32_t n = 0;
      while (next_state < states.size() && !states[next_state].next_unsent(kLazyChunkPages, &addr, &n)) ++next_state;
      if (next_state < states.size()) {
        if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(40));
        OSMO_TRY(send_range(states[next_state], addr, n, false));
        continue;
      }
      OSMO_TRY(send_json(fd, sealer, Json{{"t", "pages-done"}, {"pushed", pushed}, {"requested", requested}}));
      all_sent = true;
    }
  }();
  if (!result.ok() || !done) ::shutdown(fd, SHUT_RDWR);  // the reader may wait on a dead link
  reader.join();
  if (!result.ok()) return result.error();
  return Json{{"pushed", pushed}, {"requested", requested}, {"zero_pages", zero}, {"bytes", bytes},
              {"ms", ms_since(t0)}, {"target", target_report}};
}

Result<Json> fetch_lazy_pages(int fd, wire::ChunkSealer& sealer, wire::ChunkOpener& opener, ckpt::LazyPages& lazy,
                              int silence_ms, const std::atomic<bool>* stop) {
  const auto t0 = SteadyClock::now();
  std::uint64_t faults = 0, asked = 0, installed = 0, chunks = 0;
  bool ended = false;
  auto finish = [&](bool job_ended) -> Result<Json> {
    Status released = ok_status();
    for (ckpt::LazyProcess& p : lazy.processes)
      if (Status s = ckpt::lazy_release(p); !s.ok() && released.ok()) released = s;
    Json report{{"faults", faults},         {"requested", asked}, {"installed", installed},
                {"chunks", chunks},         {"ms", ms_since(t0)}, {"ended", job_ended}};
    Json m = report;
    m["t"] = "pages-in";
    (void)send_json(fd, sealer, m);  // the source's figures; it kills its original either way
    if (!released.ok() && !job_ended) return released.error();
    return report;
  };

  std::vector<pollfd> pfds;
  std::vector<std::uint8_t> req;
  wire::Chunk c;
  auto last_rx = SteadyClock::now();
  for (;;) {
    if (stop != nullptr && stop->load()) return finish(true);
    pfds.clear();
    pfds.push_back({fd, POLLIN, 0});
    for (const ckpt::LazyProcess& p : lazy.processes) pfds.push_back({p.uffd.get(), POLLIN, 0});
    const int n = ::poll(pfds.data(), pfds.size(), 200);
    if (n < 0 && errno != EINTR) return errno_error("post-copy: cannot wait for faults and pages");
    // Faults and events first: the job waits on them.
    req.clear();
    std::vector<ckpt::LazyProcess> forked;
    for (std::size_t i = 1; i < pfds.size(); ++i) {
      if ((pfds[i].revents & POLLIN) == 0) continue;
      ckpt::LazyProcess& p = lazy.processes[i - 1];
      OSMO_ASSIGN_OR_RETURN(std::vector<ckpt::LazyEvent> events, ckpt::lazy_read_events(p));
      for (ckpt::LazyEvent& e : events) {
        if (e.kind == ckpt::LazyEvent::Kind::kFork) {  // the child misses what we miss
          forked.push_back(ckpt::lazy_forked(p, std::move(e)));
          continue;
        }
        ++faults;
        if (ckpt::lazy_dropped(p, e.addr)) {  // memory the job dropped reads as zeros
          OSMO_TRY(ckpt::lazy_install(p, ckpt::lazy_source_address(p, e.addr), nullptr, 1, &installed, &ended));
          continue;
        }
        // The faulting page and the next ones of its range, unless the job moved memory (then
        // just the page: its neighbours may have gone elsewhere).
        const std::uint64_t a = e.addr;
        std::uint64_t end = a + kPage;
        if (p.moves.empty())
          for (const auto& [s, e2] : p.ranges)
            if (s <= a && a < e2) end = std::min(e2, a + kFaultPrefetchPages * kPage);
        const auto pages = static_cast<std::uint32_t>((end - a) / kPage);
        req.resize(req.size() + kRequestBytes);
        std::uint8_t* r = req.data() + req.size() - kRequestBytes;
        put32(r, static_cast<std::uint32_t>(p.image_pid));
        put32(r + 4, pages);
        put64(r + 8, ckpt::lazy_source_address(p, a));
        asked += pages;
      }
    }
    for (ckpt::LazyProcess& child : forked) lazy.processes.push_back(std::move(child));
    if (!req.empty()) {
      for (std::size_t off = 0; off < req.size(); off += wire::kMaxChunkPayload / kRequestBytes * kRequestBytes) {
        const std::size_t len = std::min<std::size_t>(req.size() - off, wire::kMaxChunkPayload / kRequestBytes * kRequestBytes);
        if (Status s = sealer.write(fd, wire::ChunkType::kData, {req.data() + off, len}); !s.ok())
          return make_error("cannot ask the source for pages: {}", s.error().str());
      }
    }
    if ((pfds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      if (Status s = opener.read(fd, &c); !s.ok()) return make_error("the page stream from the source broke: {}", s.error().str());
      last_rx = SteadyClock::now();
      if (c.type == wire::ChunkType::kMessage) {
        Json m = Json::parse(c.payload.begin(), c.payload.end(), nullptr, false);
        if (m.is_object() && m.value("t", "") == "pages-done") return finish(false);
        return make_error("the source sent '{}' during post-copy", m.is_object() ? m.value("error", m.value("t", "?")) : "?");
      }
      if (c.type != wire::ChunkType::kData || c.payload.size() < kPagesHeader)
        return make_error("malformed page chunk from the source");
      const std::uint8_t* p = c.payload.data();
      const auto image_pid = static_cast<std::int32_t>(get32(p));
      const std::uint32_t np = get32(p + 4);
      const std::uint64_t addr = get64(p + 8);
      if (np > kLazyChunkPages || c.payload.size() < kPagesHeader + np || (addr & (kPage - 1)) != 0)
        return make_error("malformed page chunk from the source ({} pages at {:#x})", np, addr);
      const std::uint8_t* flags = p + kPagesHeader;
      std::size_t data_pages = 0;
      for (std::uint32_t i = 0; i < np; ++i) data_pages += flags[i] == 0;
      if (c.payload.size() != kPagesHeader + np + data_pages * kPage)
        return make_error("malformed page chunk from the source ({} bytes for {} pages)", c.payload.size(), np);
      ++chunks;
      // Into every process that has these pages to come: the one restored, and children it
      // forked meanwhile. A process that is gone leaves the list; when none is left, the job
      // ended.
      for (std::size_t pi = 0; pi < lazy.processes.size();) {
        ckpt::LazyProcess& lp = lazy.processes[pi];
        bool gone = false;
        if (lp.image_pid == image_pid) {
          const std::uint8_t* data = flags + np;
          for (std::uint32_t i = 0; i < np && !gone;) {
            std::uint32_t k = 1;
            while (i + k < np && flags[i + k] == flags[i]) ++k;
            OSMO_TRY(ckpt::lazy_install(lp, addr + i * kPage, flags[i] == 0 ? data : nullptr, k, &installed, &gone));
            if (flags[i] == 0) data += k * kPage;
            i += k;
          }
        }
        if (gone)
          lazy.processes.erase(lazy.processes.begin() + static_cast<std::ptrdiff_t>(pi));
        else
          ++pi;
      }
      if (lazy.processes.empty()) return finish(true);
    } else if (ms_since(last_rx) > silence_ms) {
      return make_error("no pages from the source for {} s", silence_ms / 1000);
    }
  }
}

}  // namespace osmo::migrate
