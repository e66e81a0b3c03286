// SPDX-License-Identifier: GPL-2.0-or-later
// Pre-copy's rounds at the source and the page store at the target (see precopy.hpp).
#include "migrate/precopy.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <thread>

#include <fmt/format.h>

#include "base/unique_fd.hpp"
#include "ckpt/proc.hpp"
#include "platform/linux/proc_files.hpp"

namespace osmo::migrate {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using ckpt::PageRange;
constexpr std::uint64_t kPage = 4096;
constexpr std::uint32_t kSlotsPerBlock = 4096;  // 16 MiB per block of the store

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

std::uint64_t pages_of(const std::vector<PageRange>& rs) {
  std::uint64_t n = 0;
  for (const PageRange& r : rs) n += r.pages();
  return n;
}

std::vector<PageRange> unite(const std::vector<PageRange>& a, const std::vector<PageRange>& b) {
  std::vector<PageRange> all = a;
  all.insert(all.end(), b.begin(), b.end());
  return ckpt::coalesce(std::move(all));
}

std::vector<ckpt::PageRun> to_runs(const std::vector<PageRange>& rs) {
  std::vector<ckpt::PageRun> out;
  out.reserve(rs.size());
  for (const PageRange& r : rs) out.push_back({r.start, r.pages()});
  return out;
}

// The present (or swapped) pages of `ranges` in pid's memory, from /proc/PID/pagemap.
Result<std::vector<PageRange>> present_pages(pid_t pid, const std::vector<PageRange>& ranges) {
  UniqueFd pm(::open(fmt::format("/proc/{}/pagemap", pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!pm) return errno_error("cannot open /proc/{}/pagemap", pid);
  std::vector<PageRange> out;
  std::vector<std::uint64_t> e(8192);
  for (const PageRange& r : ranges) {
    for (std::uint64_t a = r.start; a < r.end;) {
      const std::uint64_t n = std::min<std::uint64_t>(e.size(), (r.end - a) / kPage);
      ssize_t got = ::pread(pm.get(), e.data(), n * 8, static_cast<off_t>(a / kPage * 8));
      if (got < 0) return errno_error("cannot read /proc/{}/pagemap at {:#x}", pid, a);
      if (got == 0) return make_error("the memory of pid {} is gone", pid);
      const std::uint64_t m = static_cast<std::uint64_t>(got) / 8;
      for (std::uint64_t i = 0; i < m; i++) {
        if ((e[i] & (3ull << 62)) == 0) continue;  // neither present nor swapped
        const std::uint64_t pa = a + i * kPage;
        if (!out.empty() && out.back().end == pa)
          out.back().end += kPage;
        else
          out.push_back({pa, pa + kPage});
      }
      a += m * kPage;
    }
  }
  return out;
}

// Live processes of the job: job_pid, then the other descendants of its init (parents first).
Result<std::vector<pid_t>> job_processes(pid_t job_pid) {
  OSMO_ASSIGN_OR_RETURN(auto fields, ckpt::read_stat_fields(job_pid));
  if (fields.size() < 5) return make_error("cannot read the parent of pid {}", job_pid);
  const auto init = static_cast<pid_t>(std::stol(fields[4]));
  std::vector<pid_t> out{job_pid};
  std::deque<pid_t> queue;
  for (pid_t c : platform::process_children(init))
    if (c != job_pid) queue.push_back(c);
  for (pid_t c : platform::process_children(job_pid)) queue.push_back(c);
  while (!queue.empty()) {
    const pid_t p = queue.front();
    queue.pop_front();
    if (std::find(out.begin(), out.end(), p) != out.end()) continue;
    OSMO_ASSIGN_OR_RETURN(auto st, ckpt::read_status(p));
    if (st.state == 'Z') continue;  // a zombie has no memory
    out.push_back(p);
    for (pid_t c : platform::process_children(p)) queue.push_back(c);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<PrecopySource>> PrecopySource::start(pid_t job_pid) {
  OSMO_ASSIGN_OR_RETURN(std::vector<pid_t> pids, job_processes(job_pid));
  auto src = std::unique_ptr<PrecopySource>(new PrecopySource());
  for (pid_t pid : pids) {
    OSMO_ASSIGN_OR_RETURN(auto st, ckpt::read_status(pid));
    if (st.nspid.empty()) return make_error("cannot read the namespace pid of {}", pid);
    OSMO_ASSIGN_OR_RETURN(ckpt::DirtyTracker t, ckpt::track_running_process(pid));
    src->procs_.push_back(Proc{pid, st.nspid.back(), std::move(t), {}, {}});
  }
  return src;
}

Result<std::uint64_t> PrecopySource::present_bytes() {
  std::uint64_t n = 0;
  for (Proc& p : procs_) {
    OSMO_ASSIGN_OR_RETURN(auto pr, present_pages(p.pid, p.tracker.tracked()));
    n += pages_of(pr) * kPage;
  }
  return n;
}

Result<std::uint64_t> PrecopySource::probe_written_bytes() {
  std::uint64_t n = 0;
  for (Proc& p : procs_) {
    OSMO_ASSIGN_OR_RETURN(auto d, p.tracker.collect());
    // Not sent: these stay to be sent by the next round (or carried by the image).
    p.stale = unite(p.stale, d);
    n += pages_of(d) * kPage;
  }
  return n;
}

// Reads and sends `ranges` of p in chunks; the pages that could not be read (unmapped since:
// EFAULT) are left stale, so the image carries whatever is there at the freeze.
Result<std::uint64_t> PrecopySource::send_pages(int fd, wire::ChunkSealer& sealer, Proc& p,
                                                const std::vector<PageRange>& ranges) {
  std::vector<std::uint8_t> raw(kPrecopyChunkPages * kPage);
  std::vector<std::uint8_t> chunk(16 + kPrecopyChunkPages * (1 + kPage));
  std::vector<PageRange> sent, failed;
  std::uint64_t n_sent = 0;
  for (const PageRange& r : ranges) {
    if (p.gone) break;
    for (std::uint64_t a = r.start; a < r.end && !p.gone;) {
      auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(kPrecopyChunkPages, (r.end - a) / kPage));
      iovec local{raw.data(), n * kPage}, remote{reinterpret_cast<void*>(a), n * kPage};
      ssize_t got = ::process_vm_readv(p.pid, &local, 1, &remote, 1, 0);
      if (got < 0 && errno == ESRCH) {
        p.gone = true;  // exited: what was sent stays held, nothing of it counts as clean
        break;
      }
      if (got < static_cast<ssize_t>(kPage)) {
        // The first page is unreadable: skip it, it stays stale.
        failed.push_back({a, a + kPage});
        a += kPage;
        continue;
      }
      n = static_cast<std::uint32_t>(static_cast<std::uint64_t>(got) / kPage);
      put32(chunk.data(), static_cast<std::uint32_t>(p.image_pid));
      put32(chunk.data() + 4, n);
      put64(chunk.data() + 8, a);
      std::uint8_t* flags = chunk.data() + 16;
      std::uint8_t* data = flags + n;
      for (std::uint32_t i = 0; i < n; i++) {
        const std::uint8_t* pg = raw.data() + i * kPage;
        flags[i] = all_zero(pg) ? 1 : 0;
        if (flags[i] == 0) {
          std::memcpy(data, pg, kPage);
          data += kPage;
        }
      }
      OSMO_TRY(sealer.write(fd, wire::ChunkType::kData, {chunk.data(), static_cast<std::size_t>(data - chunk.data())}));
      sent.push_back({a, a + n * kPage});
      n_sent += n;
      a += n * kPage;
    }
  }
  p.held = unite(p.held, sent);  // the target stored them, gone or not
  p.stale = ckpt::subtract(p.stale, sent);
  p.stale = unite(p.stale, failed);
  return n_sent;
}

Result<Json> PrecopySource::run_rounds(int fd, wire::ChunkSealer& sealer, const PrecopyBudget& budget) {
  const auto t0 = SteadyClock::now();
  std::vector<RoundRecord> done;
  Json per_round = Json::array();
  std::string reason;
  std::uint64_t total = 0;
  for (int round = 0;; round++) {
    // What this round sends: everything present at first, then what was written since.
    std::vector<std::vector<PageRange>> todo(procs_.size());
    std::uint64_t dirty = 0;
    for (std::size_t i = 0; i < procs_.size(); i++) {
      Proc& p = procs_[i];
      if (p.gone) continue;
      auto collected = p.tracker.collect();  // before the copy, always
      if (!collected.ok()) {
        // Exited or called exec (its memory is not the tracked one any more): no more rounds
        // for it; whatever lives under its pid at the freeze goes with the image.
        p.gone = true;
        continue;
      }
      std::vector<PageRange>& d = *collected;
      if (round == 0) {
        auto present = present_pages(p.pid, p.tracker.tracked());
        if (!present.ok()) {
          p.gone = true;
          continue;
        }
        todo[i] = std::move(*present);
        todo[i] = unite(todo[i], p.stale);
      } else {
        todo[i] = unite(d, p.stale);
      }
      // Only what is still mapped and tracked can be read; the rest goes with the image.
      p.stale = unite(p.stale, d);
      dirty += pages_of(todo[i]);
    }
    RoundVerdict v = next_round(budget, done, dirty);
    if (!v.another) {
      reason = v.reason;
      break;
    }
    OSMO_TRY(sealer.write_message(fd, Json{{"t", msg::kPrecopyRound}, {"round", round}}.dump()));
    const auto tr = SteadyClock::now();
    std::uint64_t pages = 0;
    for (std::size_t i = 0; i < procs_.size(); i++) {
      OSMO_ASSIGN_OR_RETURN(std::uint64_t n, send_pages(fd, sealer, procs_[i], todo[i]));
      pages += n;
    }
    done.push_back({pages, ms_since(tr)});
    per_round.push_back(Json{{"pages", pages}, {"ms", done.back().ms}});
    total += pages;
  }
  OSMO_TRY(sealer.write_message(
      fd, Json{{"t", msg::kPrecopyEnd}, {"rounds", done.size()}, {"pages", total}}.dump()));
  return Json{{"rounds", done.size()}, {"pages", total}, {"bytes", total * kPage}, {"ms", ms_since(t0)},
              {"reason", reason}, {"per_round", per_round}};
}

Result<ckpt::PrecopiedPages> PrecopySource::precopied(pid_t pid) {
  for (Proc& p : procs_) {
    if (p.pid != pid || p.gone) continue;
    auto d = p.tracker.collect();
    // Its memory is not the tracked one any more (exec): every held page is carried.
    if (!d.ok()) return ckpt::PrecopiedPages{to_runs(p.held), {}};
    const std::vector<PageRange> clean = ckpt::subtract(p.held, unite(*d, p.stale));
    return ckpt::PrecopiedPages{to_runs(p.held), to_runs(clean)};
  }
  // Not tracked (born after the start, or a tracked one gone): nothing is clean. If the target
  // holds pages under the same pid in the job's namespace (a pid used again), every one of them
  // is carried, so that none of its stale copies is used.
  auto st = ckpt::read_status(pid);
  if (st.ok() && !st->nspid.empty())
    for (const Proc& p : procs_)
      if (p.image_pid == st->nspid.back()) return ckpt::PrecopiedPages{to_runs(p.held), {}};
  return ckpt::PrecopiedPages{};
}

// ---- target ----

std::uint8_t* PageStoreMemory::slot(std::int32_t image_pid, std::uint64_t addr) {
  auto& idx = index_[image_pid];
  auto [it, fresh] = idx.try_emplace(addr, static_cast<std::uint32_t>(pages_));
  if (fresh) {
    // Not value-initialised (make_unique<T[]> would zero 16 MiB): every slot is written at once.
    if (pages_ % kSlotsPerBlock == 0)
      blocks_.push_back(std::unique_ptr<std::uint8_t[]>(new std::uint8_t[kSlotsPerBlock * kPage]));
    pages_++;
  }
  return blocks_[it->second / kSlotsPerBlock].get() + static_cast<std::uint64_t>(it->second % kSlotsPerBlock) * kPage;
}

Status PageStoreMemory::take_chunk(const std::vector<std::uint8_t>& c) {
  if (c.size() < 16) return make_error("protocol error: a pre-copy page chunk of {} bytes", c.size());
  const auto pid = static_cast<std::int32_t>(get32(c.data()));
  const std::uint32_t n = get32(c.data() + 4);
  const std::uint64_t addr = get64(c.data() + 8);
  if (n == 0 || n > kPrecopyChunkPages || addr % kPage != 0 || 16 + n > c.size())
    return make_error("protocol error: a malformed pre-copy page chunk ({} pages at {:#x})", n, addr);
  std::uint64_t data_pages = 0;
  for (std::uint32_t i = 0; i < n; i++) data_pages += c[16 + i] == 0 ? 1 : 0;
  if (c.size() != 16 + n + data_pages * kPage)
    return make_error("protocol error: a pre-copy page chunk of {} bytes for {} pages", c.size(), n);
  const std::uint8_t* data = c.data() + 16 + n;
  for (std::uint32_t i = 0; i < n; i++) {
    std::uint8_t* s = slot(pid, addr + i * kPage);
    if (c[16 + i] == 0) {
      std::memcpy(s, data, kPage);
      data += kPage;
    } else {
      std::memset(s, 0, kPage);
    }
  }
  return ok_status();
}

std::vector<ckpt::PageRun> PageStoreMemory::runs(std::int32_t image_pid) const {
  std::vector<ckpt::PageRun> out;
  auto it = index_.find(image_pid);
  if (it == index_.end()) return out;
  for (const auto& [addr, s] : it->second) {
    if (!out.empty() && out.back().vaddr + out.back().pages * kPage == addr)
      out.back().pages++;
    else
      out.push_back({addr, 1});
  }
  return out;
}

const std::uint8_t* PageStoreMemory::page(std::int32_t image_pid, std::uint64_t addr) const {
  auto it = index_.find(image_pid);
  if (it == index_.end()) return nullptr;
  auto s = it->second.find(addr);
  if (s == it->second.end()) return nullptr;
  return blocks_[s->second / kSlotsPerBlock].get() + static_cast<std::uint64_t>(s->second % kSlotsPerBlock) * kPage;
}

void PageStoreMemory::clear() {
  index_.clear();
  blocks_.clear();
  pages_ = 0;
}

Result<Json> receive_precopy(int fd, wire::ChunkOpener& opener, PageStoreMemory& store) {
  wire::Chunk c;
  for (;;) {
    OSMO_TRY(opener.read(fd, &c));
    if (c.type == wire::ChunkType::kData) {
      OSMO_TRY(store.take_chunk(c.payload));
      continue;
    }
    if (c.type != wire::ChunkType::kMessage) return make_error("protocol error: a stream end inside the pre-copy rounds");
    auto j = Json::parse(c.payload.begin(), c.payload.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("t") || !j["t"].is_string())
      return make_error("protocol error: a malformed message inside the pre-copy rounds");
    const std::string t = j["t"];
    if (t == msg::kPrecopyRound) continue;
    if (t == msg::kPrecopyEnd) return j;
    if (t == "abort") return make_error("the source gave up: {}", j.value("error", "?"));
    return make_error("protocol error: '{}' inside the pre-copy rounds", t);
  }
}

}  // namespace osmo::migrate
