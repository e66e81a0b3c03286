// SPDX-License-Identifier: GPL-2.0-or-later
/* rlimits: resource limits (soft and hard, several changed from their defaults) survive: every
 * one of the 16 limits reads back the same after restore. The new values only lower limits, so
 * the case works without CAP_SYS_RESOURCE (which some containers, this CI's included, lack). */
#define _GNU_SOURCE
#include <sys/resource.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  struct {
    int res;
    rlim_t soft, hard;
  } set[] = {
      {RLIMIT_NOFILE, 512, 2048},
      {RLIMIT_CORE, 0, 1 << 20},
      {RLIMIT_STACK, 6 << 20, 64 << 20},
      {RLIMIT_CPU, 3600, 7200},
      {RLIMIT_FSIZE, 1ull << 32, 1ull << 33},
      {RLIMIT_DATA, 1ull << 34, RLIM_INFINITY},
      {RLIMIT_MEMLOCK, 1 << 20, 4 << 20},
      {RLIMIT_MSGQUEUE, 100000, 200000},
      {RLIMIT_SIGPENDING, 1000, 5000},
  };
  for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
    struct rlimit rl = {set[i].soft, set[i].hard};
    ZDTM_SETUP(setrlimit(set[i].res, &rl) == 0, "setrlimit %d", set[i].res);
  }
  struct rlimit before[RLIM_NLIMITS];
  for (int r = 0; r < RLIM_NLIMITS; r++) getrlimit(r, &before[r]);
  zdtm_ready();
  zdtm_wait_go();
  for (int r = 0; r < RLIM_NLIMITS; r++) {
    struct rlimit now;
    getrlimit(r, &now);
    ZDTM_CHECK(now.rlim_cur == before[r].rlim_cur && now.rlim_max == before[r].rlim_max,
               "limit %d: %llu/%llu, want %llu/%llu", r, (unsigned long long)now.rlim_cur,
               (unsigned long long)now.rlim_max, (unsigned long long)before[r].rlim_cur,
               (unsigned long long)before[r].rlim_max);
  }
  return zdtm_finish();
}
