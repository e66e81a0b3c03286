// SPDX-License-Identifier: GPL-2.0-or-later
// bench/run: what `osmo run` costs against running the same program locally, measured in one run.
//   start latency: p50 of `osmo run --node REMOTE true` vs p50 of a local fork+exec of `true`
//   stdout throughput: `osmo run --node REMOTE head -c N /dev/zero` read through a pipe vs the
//   same `head` writing into a local pipe
// Run it inside a testbed node (bench/run/run.sh does: testbed up, exec in n1, down). Prints the
// figures and their ratios; never passes or fails on time.
// Usage: osmo-run-bench OSMO_BIN REMOTE_NODE [--starts N] [--bytes B]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Spawns argv with stdout into a pipe that we drain; returns (seconds, bytes read, exit status).
struct Run {
  double seconds = 0;
  unsigned long long bytes = 0;
  int status = -1;
};

Run spawn_and_drain(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int p[2];
  if (pipe(p) != 0) std::exit(1);
  fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_addclose(&fa, p[0]);
  posix_spawn_file_actions_addclose(&fa, p[1]);
  Run r;
  const double t0 = now_s();
  pid_t pid = 0;
  if (posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) {
    std::perror(argv[0]);
    std::exit(1);
  }
  close(p[1]);
  static std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = read(p[0], buf.data(), buf.size());
    if (n <= 0) break;
    r.bytes += static_cast<unsigned long long>(n);
  }
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.seconds = now_s() - t0;
  r.status = st;
  posix_spawn_file_actions_destroy(&fa);
  return r;
}

double p50(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OSMO_BIN REMOTE_NODE [--starts N] [--bytes B]\n", argv[0]);
    return 2;
  }
  const std::string osmo = argv[1], node = argv[2];
  int starts = 200;
  unsigned long long bytes = 4ull << 30;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--starts") == 0) starts = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--bytes") == 0) bytes = std::strtoull(argv[i + 1], nullptr, 10);
  }

  // Warm-up: page cache, the daemons' first connections.
  for (int i = 0; i < 5; ++i) {
    spawn_and_drain({"true"});
    spawn_and_drain({osmo, "run", "--node", node, "true"});
  }
  std::vector<double> local, remote;
  for (int i = 0; i < starts; ++i) {  // interleaved, so that background load hits both alike
    local.push_back(spawn_and_drain({"true"}).seconds);
    const Run r = spawn_and_drain({osmo, "run", "--node", node, "true"});
    if (r.status != 0) {
      std::fprintf(stderr, "osmo run --node %s true failed (wait status %#x)\n", node.c_str(), r.status);
      return 1;
    }
    remote.push_back(r.seconds);
  }
  const double l50 = p50(local) * 1e3, r50 = p50(remote) * 1e3;
  std::printf("start latency p50 (%d starts): osmo run --node %s true %.2f ms, local fork+exec true %.2f ms, ratio %.1fx\n",
              starts, node.c_str(), r50, l50, r50 / l50);

  // Throughput: three interleaved rounds, best of each side (the machine is shared; the best round
  // is the one least disturbed by others).
  const std::string count = std::to_string(bytes);
  double lbest = 0, rbest = 0;
  for (int round = 0; round < 3; ++round) {
    const Run lp = spawn_and_drain({"head", "-c", count, "/dev/zero"});
    const Run rp = spawn_and_drain({osmo, "run", "--node", node, "head", "-c", count, "/dev/zero"});
    if (lp.bytes != bytes || rp.bytes != bytes) {
      std::fprintf(stderr, "short stream: local %llu, osmo run %llu of %llu bytes\n", lp.bytes, rp.bytes, bytes);
      return 1;
    }
    lbest = std::max(lbest, static_cast<double>(bytes) / lp.seconds / 1e9);
    rbest = std::max(rbest, static_cast<double>(bytes) / rp.seconds / 1e9);
  }
  std::printf("stdout throughput (%.1f GiB, best of 3): osmo run --node %s %.2f GB/s, local pipe %.2f GB/s, ratio %.2f\n",
              static_cast<double>(bytes) / (1 << 30), node.c_str(), rbest, lbest, rbest / lbest);
  return 0;
}
