// SPDX-License-Identifier: GPL-2.0-or-later
// The programs bench/spread runs inside jobs (one static binary, several modes):
//   osmo-spread-prog noop                 exits at once (the exec target of `execs`)
//   osmo-spread-prog burn SECONDS         spins until it has used SECONDS of CPU time
//   osmo-spread-prog execs N PROG [ARGS]  N times fork + exec PROG + wait; prints p50 and mean
//                                         of one round trip in microseconds
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace {

double now_us(clockid_t c) {
  timespec t{};
  clock_gettime(c, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

int execs(int n, char** argv) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const double t0 = now_us(CLOCK_MONOTONIC);
    const pid_t p = fork();
    if (p == 0) {
      execv(argv[0], argv);
      _exit(127);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "osmo-spread-prog: %s failed (status %#x)\n", argv[0], st);
      return 1;
    }
    us.push_back(now_us(CLOCK_MONOTONIC) - t0);
  }
  double sum = 0;
  for (double v : us) sum += v;
  std::sort(us.begin(), us.end());
  printf("p50_us=%.1f mean_us=%.1f n=%d\n", us[us.size() / 2], sum / static_cast<double>(n), n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "noop") == 0) return 0;
  if (argc == 3 && strcmp(argv[1], "burn") == 0) {
    const double want_us = atof(argv[2]) * 1e6;
    volatile unsigned long x = 0;
    while (now_us(CLOCK_PROCESS_CPUTIME_ID) < want_us)
      for (int i = 0; i < 100000; ++i) x = x + static_cast<unsigned long>(i);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "execs") == 0) return execs(atoi(argv[2]), argv + 3);
  fprintf(stderr, "usage: osmo-spread-prog noop | burn SECONDS | execs N PROG [ARGS...]\n");
  return 2;
}
