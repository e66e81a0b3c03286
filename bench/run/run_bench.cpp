// SPDX-License-Identifier: GPL-2.0-or-later
// bench/run: what `osmo run` costs against running the same program locally, measured in one run.
//   start latency: p50 of `osmo run --node REMOTE true` vs p50 of a local fork+exec of `true`
//   stdout throughput: `osmo run --node REMOTE head -c N /dev/zero` read through a pipe vs the
//   same `head` writing into a local pipe
//   start latency from a terminal: the same `true`, on a fresh pty each (the job gets a pty too)
//   keystroke round trip: a byte typed into the terminal of `osmo run --node REMOTE cat` (a pty:
//   the job gets one of its own, whose line discipline echoes) until its echo is back, vs the same
//   on a local pty running cat (issue 12; target: under 1 ms more than local)
// Run it inside a testbed node (bench/run/run.sh does: testbed up, exec in n1, down). Prints the
// figures and their ratios; never passes or fails on time.
// Usage: osmo-run-bench OSMO_BIN REMOTE_NODE [--starts N] [--bytes B]
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <termios.h>
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

// A program on a fresh pty (its controlling terminal, as from a login), for typing into.
struct PtyChild {
  int master = -1;
  pid_t pid = -1;
};

PtyChild spawn_on_pty(const std::vector<std::string>& args) {
  PtyChild c;
  int slave = -1;
  winsize ws{};
  ws.ws_row = 24;
  ws.ws_col = 80;
  if (openpty(&c.master, &slave, nullptr, nullptr, &ws) != 0) {
    std::perror("openpty");
    std::exit(1);
  }
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  c.pid = fork();
  if (c.pid < 0) std::exit(1);
  if (c.pid == 0) {
    setsid();
    ioctl(slave, TIOCSCTTY, 0);
    for (int fd = 0; fd < 3; ++fd) dup2(slave, fd);
    if (slave > 2) close(slave);
    close(c.master);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(slave);
  return c;
}

// Types `byte` and waits (at most `timeout_s`) until it comes back; returns the seconds, or -1.
double echo_round_trip(int master, char byte, double timeout_s) {
  const double t0 = now_s();
  if (write(master, &byte, 1) != 1) return -1;
  for (;;) {
    const double left = timeout_s - (now_s() - t0);
    if (left <= 0) return -1;
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) continue;
    char buf[256];
    const ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) return -1;
    if (std::memchr(buf, byte, static_cast<std::size_t>(n)) != nullptr) return now_s() - t0;
  }
}

// p50 of `rounds` keystroke round trips on `c` (after a warm-up that also waits for the start).
double keystroke_p50(PtyChild& c, int rounds, bool wait_for_raw) {
  // `osmo run` turns our pty's echo off (raw mode) once it runs: from then on every echo is the
  // job's own pty's. Before, the local line discipline would answer.
  for (const double t0 = now_s(); wait_for_raw;) {
    termios t{};
    if (tcgetattr(c.master, &t) == 0 && (t.c_lflag & ECHO) == 0) break;
    if (now_s() - t0 > 20) {
      std::fprintf(stderr, "osmo run did not put its terminal in raw mode within 20 s\n");
      std::exit(1);
    }
    usleep(1000);
  }
  if (echo_round_trip(c.master, 'w', 20) < 0) {
    std::fprintf(stderr, "no echo from the program on the pty within 20 s\n");
    std::exit(1);
  }
  std::vector<double> v;
  for (int i = 0; i < rounds; ++i) {
    const double t = echo_round_trip(c.master, static_cast<char>('a' + i % 26), 5);
    if (t < 0) {
      std::fprintf(stderr, "a keystroke's echo did not come back within 5 s\n");
      std::exit(1);
    }
    v.push_back(t);
  }
  return p50(v);
}

// Ends the line, then EOF (Ctrl-D); kills the program if it is still there after 10 s.
int finish_pty(PtyChild& c) {
  (void)!write(c.master, "\n\x04", 2);
  const double t0 = now_s();
  int st = 0;
  char buf[4096];
  while (waitpid(c.pid, &st, WNOHANG) == 0) {
    if (now_s() - t0 > 10) {
      kill(c.pid, SIGKILL);
      waitpid(c.pid, &st, 0);
      break;
    }
    pollfd p{c.master, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) (void)!read(c.master, buf, sizeof buf);
  }
  close(c.master);
  return st;
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

  // Start latency from a terminal (the job gets a pty: opened, configured and given to the user on
  // the node; our terminal goes raw and back), interleaved as above.
  std::vector<double> tlocal, tremote;
  for (int i = 0; i < std::max(10, starts / 4); ++i) {
    for (bool through_osmo : {false, true}) {
      const double t0 = now_s();
      PtyChild c = through_osmo ? spawn_on_pty({osmo, "run", "--node", node, "true"})
                                : spawn_on_pty({"true"});
      const int st = finish_pty(c);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        std::fprintf(stderr, "%s true on a pty ended with wait status %#x\n",
                     through_osmo ? "osmo run" : "local", st);
        return 1;
      }
      (through_osmo ? tremote : tlocal).push_back(now_s() - t0);
    }
  }
  std::printf("start latency from a terminal p50 (%zu starts): osmo run --node %s true %.2f ms, local %.2f ms\n",
              tremote.size(), node.c_str(), p50(tremote) * 1e3, p50(tlocal) * 1e3);

  // Keystroke round trip: local pty first, then through osmo run; each a session of its own.
  constexpr int kKeys = 300;
  PtyChild lc = spawn_on_pty({"cat"});
  const double lk = keystroke_p50(lc, kKeys, false) * 1e3;
  finish_pty(lc);
  PtyChild rc = spawn_on_pty({osmo, "run", "--node", node, "cat"});
  const double rk = keystroke_p50(rc, kKeys, true) * 1e3;
  const int rst = finish_pty(rc);
  if (!WIFEXITED(rst) || WEXITSTATUS(rst) != 0) {
    std::fprintf(stderr, "osmo run --node %s cat on a pty ended with wait status %#x\n", node.c_str(), rst);
    return 1;
  }
  std::printf("keystroke round trip p50 (%d keys): osmo run --node %s cat %.3f ms, local pty %.3f ms, %.3f ms more\n",
              kKeys, node.c_str(), rk, lk, rk - lk);
  return 0;
}
