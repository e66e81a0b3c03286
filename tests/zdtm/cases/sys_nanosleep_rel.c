// SPDX-License-Identifier: GPL-2.0-or-later
/* sys_nanosleep_rel: checkpointed inside a relative nanosleep() of 1.5 s. The kernel writes the
 * remaining time when the sleep is interrupted; whether the restore restarts the sleep or
 * returns EINTR (then the loop sleeps the remainder), the total sleep measured on the process's
 * monotonic clock must be at least the 1.5 s asked for. */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  struct timespec req = {1, 500 * 1000 * 1000}, rem;
  double start = zdtm_now(CLOCK_MONOTONIC);
  zdtm_ready();
  int eintr = 0, r;
  while ((r = nanosleep(&req, &rem)) == -1 && errno == EINTR) {
    eintr++;
    req = rem;
  }
  double slept = zdtm_now(CLOCK_MONOTONIC) - start;
  ZDTM_CHECK(r == 0, "nanosleep finished (after %d EINTR)", eintr);
  ZDTM_CHECK(slept >= 1.5 - 0.002, "slept %.3f s of the 1.5 s asked", slept);
  zdtm_wait_go();
  return zdtm_finish();
}
