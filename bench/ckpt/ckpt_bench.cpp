// SPDX-License-Identifier: GPL-2.0-or-later
// Checkpoint/restore throughput: a child with S bytes of non-zero anonymous memory is dumped
// (to /dev/null: engine cost only; and to a memfd: what a restore reads), then restored from the
// memfd; the restored child verifies every word of its memory and exits 0. "dump+restore" is the
// engine's cost (dump to /dev/null + restore); "image in memory" adds storing the image in a memfd
// (fresh page cache, allocated at the VM's page-allocation speed). A second child is streamed
// dump|restore through a pipe, the image never stored: the migration path. Baselines measured in
// the same run: memcpy bandwidth (hot buffers) and fresh-memory bandwidth (MAP_POPULATE of new
// pages, the bound for any restore on this VM where a first-touch fault costs ~12 µs), and writing
// the same size into a fresh memfd (the bound for storing an image in memory at all).
// Usage: [BENCH_DEBUG=1] ckpt_bench [--no-userfaultfd] [--compress] [--repeat N] [MiB...]   (default: 64 1024
// 4096, 3 runs of each size up to 1 GiB and a median line, 1 run above; a size needs 4x its memory
// + 1 GiB available, else it is skipped with a note). BENCH_DEBUG=1 adds the engine's phase
// times. Needs root.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/log.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/proc.hpp"

using namespace osmo;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
constexpr double kGiB = 1024.0 * 1024 * 1024;

double memcpy_gibs() {
  std::size_t n = 256u << 20;
  auto* a = static_cast<char*>(mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  auto* b = static_cast<char*>(mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  std::memset(a, 1, n);
  double best = 1e9;
  for (int i = 0; i < 5; i++) {
    auto t0 = Clock::now();
    std::memcpy(b, a, n);
    best = std::min(best, secs(t0, Clock::now()));
  }
  munmap(a, n);
  munmap(b, n);
  return static_cast<double>(n) / kGiB / best;
}

double populate_gibs(std::size_t n) {
  auto t0 = Clock::now();
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  double s = secs(t0, Clock::now());
  munmap(p, n);
  return static_cast<double>(n) / kGiB / s;
}

// Writing n bytes into a fresh memfd from a hot buffer: what storing an image in memory (tmpfs,
// page cache) costs at the least, whoever writes it.
double memfd_write_gibs(std::size_t n) {
  constexpr std::size_t kChunk = 4u << 20;
  std::vector<char> buf(kChunk, 5);
  int fd = memfd_create("bench-baseline", MFD_CLOEXEC);
  auto t0 = Clock::now();
  for (std::size_t off = 0; off < n; off += kChunk)
    if (pwrite(fd, buf.data(), std::min(kChunk, n - off), static_cast<off_t>(off)) < 0) break;
  double s = secs(t0, Clock::now());
  close(fd);
  return static_cast<double>(n) / kGiB / s;
}

std::uint64_t mem_available() {
  auto t = ckpt::read_text_file("/proc/meminfo");
  if (!t.ok()) return 0;
  auto p = t->find("MemAvailable:");
  return p == std::string::npos ? 0 : std::stoull(t->substr(p + 13)) * 1024;
}

volatile sig_atomic_t g_go = 0;
ckpt::RestoreOptions g_restore_options;
bool g_compress = false;  // --compress: LZ4 page sections (the child's memory barely compresses)

// The benchmarked process: fills its memory, says ready, waits for SIGUSR1, verifies, exits.
pid_t spawn(std::size_t n) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(ready[0]);
    signal(SIGUSR1, [](int) { g_go = 1; });
    // SIGUSR1 stays blocked except inside sigsuspend: a restored process re-executes the
    // interrupted call, and a handler run just before that must not be a lost wake-up.
    sigset_t usr1, waitmask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &waitmask);
    sigdelset(&waitmask, SIGUSR1);
    auto* m = static_cast<std::uint64_t*>(
        mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
    for (std::size_t i = 0; i < n / 8; i++) m[i] = i * 0x9e3779b97f4a7c15ull + 1;
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    for (int fd = 3; fd < 1024; fd++)
      if (fd != ready[1]) close(fd);
    char c = 1;
    (void)!write(ready[1], &c, 1);
    close(ready[1]);  // the parent dumps once it sees EOF: no fd is left but 0-2
    while (!g_go) sigsuspend(&waitmask);
    for (std::size_t i = 0; i < n / 8; i++)
      if (m[i] != i * 0x9e3779b97f4a7c15ull + 1) _exit(1);
    _exit(0);
  }
  close(ready[1]);
  char c;
  if (read(ready[0], &c, 1) != 1 || read(ready[0], &c, 1) != 0) pid = -1;
  close(ready[0]);
  return pid;
}

int wait_exit(pid_t p) {
  int st = 0;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// What one run measured, in seconds.
struct Figures {
  double dump = 0;        // to /dev/null: the engine's cost
  double restore = 0;     // from the image in a memfd
  double in_memory = 0;   // dump into the memfd + restore
  double streamed = 0;    // dump|restore through a pipe
};

int run(std::size_t mib, double memcpy_bw, std::vector<Figures>* figures) {
  std::size_t n = mib << 20;
  if (mem_available() < 4 * n + (1ull << 30)) {
    std::printf("%6zu MiB  skipped: needs ~%zu MiB free (4x the size + 1 GiB), %llu MiB available\n", mib,
                4 * mib + 1024, static_cast<unsigned long long>(mem_available() >> 20));
    return 0;
  }
  double pop_bw = populate_gibs(n);
  double memfd_bw = memfd_write_gibs(n);
  pid_t pid = spawn(n);
  if (pid < 0) return 1;
  ckpt::CheckpointOptions resume;
  resume.compress = g_compress;
  int devnull = open("/dev/null", O_WRONLY);
  auto t0 = Clock::now();
  Status s = ckpt::checkpoint(pid, devnull, resume);
  double dump_null = secs(t0, Clock::now());
  close(devnull);
  if (!s.ok()) {
    std::fprintf(stderr, "dump failed: %s\n", s.error().str().c_str());
    return 1;
  }
  int img = memfd_create("bench-image", MFD_CLOEXEC);
  ckpt::CheckpointOptions kill_opts;
  kill_opts.after = ckpt::AfterDump::kKill;
  kill_opts.compress = g_compress;
  ckpt::CheckpointStats st;
  t0 = Clock::now();
  s = ckpt::checkpoint(pid, img, kill_opts, &st);
  double dump_memfd = secs(t0, Clock::now());
  if (!s.ok()) {
    std::fprintf(stderr, "dump failed: %s\n", s.error().str().c_str());
    return 1;
  }
  waitpid(pid, nullptr, WNOHANG);
  lseek(img, 0, SEEK_SET);
  t0 = Clock::now();
  auto r = ckpt::restore(img, g_restore_options);
  double restore_s = secs(t0, Clock::now());
  close(img);
  if (!r.ok()) {
    std::fprintf(stderr, "restore failed: %s\n", r.error().str().c_str());
    return 1;
  }
  kill(r->pid, SIGUSR1);
  int code = wait_exit(r->init_pid);
  close(r->pidfd);
  // The migration path: the dump streams into a pipe while the restore reads it, the image is
  // never stored. A fresh process, killed once its image is complete, as a migration does.
  pid_t pid2 = spawn(n);
  if (pid2 < 0) return 1;
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) return 1;
  fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20);
  t0 = Clock::now();
  Status dump_status = ok_status();
  std::thread dumper([&] {
    dump_status = ckpt::checkpoint(pid2, pfd[1], kill_opts);
    close(pfd[1]);
  });
  auto r2 = ckpt::restore(pfd[0], g_restore_options);
  double stream_s = secs(t0, Clock::now());
  close(pfd[0]);  // a restore that failed early must not leave the dump blocked on a full pipe
  dumper.join();
  waitpid(pid2, nullptr, 0);
  if (!dump_status.ok() || !r2.ok()) {
    std::fprintf(stderr, "streamed dump/restore failed: %s\n",
                 (!dump_status.ok() ? dump_status.error() : r2.error()).str().c_str());
    return 1;
  }
  kill(r2->pid, SIGUSR1);
  int code2 = wait_exit(r2->init_pid);
  close(r2->pidfd);
  double gib = static_cast<double>(n) / kGiB;
  std::printf(
      "%6zu MiB  dump(/dev/null) %7.1f ms %5.2f GiB/s | dump(memfd) %7.1f ms %5.2f GiB/s (frozen %.1f ms, image %.0f MiB) | "
      "restore %7.1f ms %5.2f GiB/s | dump+restore %7.1f ms (image in memory: %7.1f ms) | dump|restore (pipe) "
      "%7.1f ms | verify %s\n",
      mib, dump_null * 1e3, gib / dump_null, dump_memfd * 1e3, gib / dump_memfd, st.freeze_ms,
      static_cast<double>(st.image_bytes) / (1 << 20), restore_s * 1e3,
      gib / restore_s, (dump_null + restore_s) * 1e3, (dump_memfd + restore_s) * 1e3, stream_s * 1e3,
      code == 0 && code2 == 0 ? "ok" : "FAILED");
  std::printf(
      "            baselines: memcpy %.2f GiB/s, fresh memory (MAP_POPULATE) %.2f GiB/s, memfd write %.2f GiB/s | "
      "ratios: dump/memcpy %.2f, restore/memcpy %.2f, restore/populate %.2f, dump(memfd)/memfd write %.2f\n",
      memcpy_bw, pop_bw, memfd_bw, (gib / dump_null) / memcpy_bw, (gib / restore_s) / memcpy_bw,
      (gib / restore_s) / pop_bw, (gib / dump_memfd) / memfd_bw);
  figures->push_back({dump_null, restore_s, dump_memfd + restore_s, stream_s});
  return code == 0 && code2 == 0 ? 0 : 1;
}

double median_ms(const std::vector<Figures>& runs, double Figures::*field) {
  std::vector<double> v;
  for (const Figures& f : runs) v.push_back(f.*field * 1e3);
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// One line over the runs of a size: medians, and every run's dump + restore (the VM's memory
// state makes single runs vary: fresh pages cost ~2x more once the host has taken them back).
void print_summary(std::size_t mib, const std::vector<Figures>& runs) {
  std::string each;
  for (const Figures& f : runs) each += fmt::format("{}{:.0f}", each.empty() ? "" : " / ", (f.dump + f.restore) * 1e3);
  double dump = median_ms(runs, &Figures::dump), restore = median_ms(runs, &Figures::restore);
  std::printf(
      "%6zu MiB  median of %zu runs: dump %.1f ms, restore %.1f ms, dump+restore %.1f ms (each run: %s ms) | "
      "image in memory %.1f ms | dump|restore (pipe) %.1f ms\n",
      mib, runs.size(), dump, restore, dump + restore, each.c_str(), median_ms(runs, &Figures::in_memory),
      median_ms(runs, &Figures::streamed));
}

}  // namespace

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "ckpt_bench needs root (ptrace, namespaces)\n");
    return 77;
  }
  std::vector<std::size_t> sizes;
  int repeat = 0;  // 0: 3 runs up to 1 GiB, 1 above (a 4 GiB run takes ~20 s)
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--no-userfaultfd") == 0)
      g_restore_options.fill_with_userfaultfd = false;  // the fallback fill path, for comparison
    else if (std::strcmp(argv[i], "--compress") == 0)
      g_compress = true;
    else if (std::strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
      repeat = std::max(1, std::atoi(argv[++i]));
    else
      sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  }
  if (sizes.empty()) sizes = {64, 1024, 4096};
  if (std::getenv("BENCH_DEBUG") != nullptr) Logger::set_level(LogLevel::kDebug);  // the engine's phase times
  double bw = memcpy_gibs();
  int rc = 0;
  for (std::size_t mib : sizes) {
    std::vector<Figures> runs;
    int n = repeat > 0 ? repeat : (mib <= 1024 ? 3 : 1);
    for (int k = 0; k < n; k++) rc |= run(mib, bw, &runs);
    if (runs.size() > 1) print_summary(mib, runs);
  }
  return rc;
}
