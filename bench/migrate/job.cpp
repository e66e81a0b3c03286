// SPDX-License-Identifier: GPL-2.0-or-later
// `job SIZE [DIRTY_MB_PER_S] [--seconds N]`: the process bench/migrate moves between nodes.
//
// It maps SIZE bytes of anonymous memory, fills every page with the pattern of pattern.hpp
// (generation 0), prints "ready", then works in 10 ms slices for N seconds of slices (default
// and maximum 600): each slice rewrites DIRTY_MB_PER_S / 100 MiB worth of whole pages with their
// next generation, walking the range with a stride of ~0.618 x the page count so that consecutive
// writes land far apart and every page is rewritten once per lap (the worst case for pre-copy: no
// locality to exploit). After every 100 slices it re-reads the next 16 MiB of the range (rolling,
// so the whole range is checked every SIZE/16 MiB seconds), compares it with what it wrote, and
// prints one line "TICK CHECKSUM". At the end it checks every page and prints "done TICK CHECKSUM".
// SIGUSR1 asks for a check of every page now (run.sh sends it after a migration, with `osmo kill
// -USR1`); the answer goes to stderr: "job: full check at tick T: N pages intact".
//
// The output depends only on the arguments, never on timing: an undisturbed run and a run that was
// migrated any number of times print the same bytes, so comparing them proves the job survived
// intact. A page that differs is reported on stderr and the job exits 3.
//
// What the job sees of a migration goes to stderr: a slice during which it was neither running
// nor asleep on purpose for more than 10 ms prints "job: stalled MS ms at tick T" (wall time from
// CLOCK_REALTIME, which time namespaces leave alone, minus the sleep it asked for, minus the CPU
// time it used). For a job frozen for a stop-and-copy or the final pre-copy round, that is the
// freeze as the job felt it; on a busy machine, scheduler delays show up too.
//
// Single-threaded, no timers but nanosleep, no sockets, no files: what the engine can move.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string_view>
#include <vector>

#include "modes.hpp"
#include "pattern.hpp"

namespace osmo::bench {
namespace {

constexpr double kSliceS = 0.010;           // one slice of work and sleep
constexpr unsigned kSlicesPerTick = 100;    // one output line per second
constexpr std::uint64_t kMaxSeconds = 600;  // bounded: the job always ends by itself
constexpr std::uint64_t kVerifyBytesPerTick = 16ull << 20;  // ~10 ms of CPU
constexpr double kReportStallS = 0.010;
constexpr std::uint64_t kMaxDirtyMiBPerS = 100000;

double clock_s(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct JobArgs {
  std::uint64_t size = 0;
  std::uint64_t dirty_mib_per_s = 0;
  std::uint64_t seconds = kMaxSeconds;
};

Result<JobArgs> parse_job_args(int argc, char** argv) {
  JobArgs a;
  std::vector<std::string_view> pos;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--seconds") {
      if (i + 1 >= argc) return make_error("--seconds needs a value");
      OSMO_ASSIGN_OR_RETURN(a.seconds, parse_count(argv[++i], "--seconds"));
      if (a.seconds == 0 || a.seconds > kMaxSeconds)
        return make_error("--seconds must be 1..{}, got {}", kMaxSeconds, a.seconds);
    } else {
      pos.push_back(arg);
    }
  }
  if (pos.empty() || pos.size() > 2)
    return make_error("usage: job SIZE [DIRTY_MB_PER_S] [--seconds N]");
  OSMO_ASSIGN_OR_RETURN(a.size, parse_size(pos[0]));
  if (pos.size() == 2) {
    OSMO_ASSIGN_OR_RETURN(a.dirty_mib_per_s, parse_count(pos[1], "DIRTY_MB_PER_S"));
    if (a.dirty_mib_per_s > kMaxDirtyMiBPerS)
      return make_error("DIRTY_MB_PER_S must be at most {}, got {}", kMaxDirtyMiBPerS,
                        a.dirty_mib_per_s);
  }
  return a;
}

class Job {
 public:
  Job(Mapping mem, std::size_t page) : mem_(std::move(mem)), page_(page) {
    npages_ = mem_.size() / page_;
    words_per_page_ = page_ / sizeof(std::uint64_t);
    generation_.assign(npages_, 0);
    // A stride coprime with the page count visits every page once per lap.
    stride_ = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(static_cast<double>(npages_) * 0.6180339887));
    while (std::gcd(stride_, npages_) != 1) ++stride_;
    verify_pages_ =
        std::min<std::uint64_t>(npages_, std::max<std::uint64_t>(1, kVerifyBytesPerTick / page_));
  }

  void fill() {
    for (std::uint64_t p = 0; p < npages_; ++p) fill_page(page_words(p), words_per_page_, p, 0);
  }

  void dirty(std::uint64_t count) {
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint64_t p = dirty_cursor_;
      dirty_cursor_ = (dirty_cursor_ + stride_) % npages_;
      fill_page(page_words(p), words_per_page_, p, ++generation_[p]);
    }
  }

  // Checks `count` pages from the rolling cursor; returns the checksum of what it read, or an
  // error naming the first page that differs.
  Result<std::uint32_t> verify(std::uint64_t count) {
    std::uint64_t fold = 0;
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint64_t p = verify_cursor_;
      verify_cursor_ = (verify_cursor_ + 1) % npages_;
      const std::size_t at = check_page(page_words(p), words_per_page_, p, generation_[p], fold);
      if (at != words_per_page_)
        return make_error(
            "page {} (generation {}) differs from what the job wrote in the 8 "
            "bytes at offset {}: memory is not intact",
            p, generation_[p], at * sizeof(std::uint64_t));
    }
    return static_cast<std::uint32_t>(fold ^ (fold >> 32));
  }

  std::uint64_t npages() const { return npages_; }
  std::uint64_t verify_pages() const { return verify_pages_; }

 private:
  std::uint64_t* page_words(std::uint64_t p) { return mem_.words() + p * words_per_page_; }

  Mapping mem_;
  std::size_t page_;
  std::uint64_t npages_ = 0, words_per_page_ = 0, stride_ = 1, verify_pages_ = 1;
  std::uint64_t dirty_cursor_ = 0, verify_cursor_ = 0;
  std::vector<std::uint32_t> generation_;  // per page: how many times it was rewritten
};

volatile sig_atomic_t g_full_check = 0;
void on_sigusr1(int) {
  g_full_check = 1;
}

// Sleeps until `deadline` (CLOCK_MONOTONIC seconds); nanosleep only, restarted after a signal or
// a ptrace stop interrupts it. Gives up when the deadline is more than two slices away: the clock
// went back while we slept (a migration that set the time namespace wrong), and the job must not
// hang on it.
void sleep_until(double deadline) {
  for (;;) {
    const double left = deadline - now_s();
    if (left <= 0 || left > 2 * kSliceS) return;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(left);
    ts.tv_nsec = static_cast<long>((left - static_cast<double>(ts.tv_sec)) * 1e9);
    nanosleep(&ts, nullptr);
  }
}

}  // namespace

int job_main(int argc, char** argv) {
  auto args = parse_job_args(argc, argv);
  if (!args) {
    std::fprintf(stderr, "job: %s\n", args.error().str().c_str());
    return 2;
  }
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  if (args->size % page != 0) {
    std::fprintf(stderr, "job: SIZE %" PRIu64 " is not a multiple of the page size %zu\n",
                 args->size, page);
    return 2;
  }
  // MAP_POPULATE allocates the pages in one pass: on this VM a first-touch fault costs ~12 us, so
  // faulting 4 GiB page by page would take longer than the benchmark. The mapping is still a plain
  // private anonymous one.
  auto mem = Mapping::anonymous(args->size, MAP_POPULATE);
  if (!mem) {
    std::fprintf(stderr, "job: %s\n", mem.error().str().c_str());
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_sigusr1;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  Job job(std::move(*mem), page);
  const double t_fill = now_s();
  job.fill();
  std::fprintf(stderr,
               "job: %" PRIu64 " bytes (%" PRIu64 " pages) filled in %.2f s, dirtying %" PRIu64
               " MiB/s for %" PRIu64 " s\n",
               args->size, job.npages(), now_s() - t_fill, args->dirty_mib_per_s, args->seconds);
  std::printf("ready\n");
  std::fflush(stdout);

  const double pages_per_slice =
      static_cast<double>(args->dirty_mib_per_s) * 1048576.0 / static_cast<double>(page) * kSliceS;
  double pages_due = 0;
  const double wall_start = clock_s(CLOCK_REALTIME);
  const double wall_limit = 2.0 * static_cast<double>(args->seconds) + 60.0;
  double deadline = now_s();
  double stall_max = 0;
  for (std::uint64_t tick = 1; tick <= args->seconds; ++tick) {
    for (unsigned s = 0; s < kSlicesPerTick; ++s) {
      if (g_full_check != 0) {  // before this slice's clocks: its time is no stall
        g_full_check = 0;
        auto all = job.verify(job.npages());  // a whole lap: the rolling cursor ends where it was
        if (!all) {
          std::fprintf(stderr, "job: full check at tick %" PRIu64 ": %s\n", tick,
                       all.error().str().c_str());
          return 3;
        }
        std::fprintf(stderr, "job: full check at tick %" PRIu64 ": %" PRIu64 " pages intact\n",
                     tick, job.npages());
        deadline = now_s();
      }
      const double wall0 = clock_s(CLOCK_REALTIME), cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
      pages_due += pages_per_slice;
      const auto n = static_cast<std::uint64_t>(pages_due);
      pages_due -= static_cast<double>(n);
      job.dirty(n);
      if (s + 1 == kSlicesPerTick) {
        auto sum = job.verify(job.verify_pages());
        if (!sum) {
          std::fprintf(stderr, "job: tick %" PRIu64 ": %s\n", tick, sum.error().str().c_str());
          return 3;
        }
        std::printf("%" PRIu64 " %08x\n", tick, *sum);
        std::fflush(stdout);
      }
      // Pace by deadlines (so the rate holds), but never catch up more than 100 ms of work after
      // a stall, and never sleep more than two slices: a clock that jumped (a time namespace set
      // wrong by a migration) must not stall or rush the job.
      deadline += kSliceS;
      const double now = now_s();
      if (now > deadline + 0.1 || deadline - now > 2 * kSliceS) deadline = now + kSliceS;
      const double intended = std::max(0.0, deadline - now);
      sleep_until(deadline);
      const double cpu = std::max(0.0, clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0);
      const double stall = clock_s(CLOCK_REALTIME) - wall0 - intended - cpu;
      if (stall > kReportStallS) {
        std::fprintf(stderr, "job: stalled %.1f ms at tick %" PRIu64 "\n", stall * 1e3, tick);
        stall_max = std::max(stall_max, stall);
      }
      if (clock_s(CLOCK_REALTIME) - wall_start > wall_limit) {
        std::fprintf(stderr,
                     "job: still running after %.0f s of wall time for %" PRIu64
                     " s of work; stopping\n",
                     wall_limit, args->seconds);
        return 4;
      }
    }
  }
  auto sum = job.verify(job.npages());  // the whole range, once
  if (!sum) {
    std::fprintf(stderr, "job: final check: %s\n", sum.error().str().c_str());
    return 3;
  }
  std::printf("done %" PRIu64 " %08x\n", args->seconds, *sum);
  std::fprintf(stderr, "job: done, longest stall %.1f ms\n", stall_max * 1e3);
  return 0;
}

}  // namespace osmo::bench
