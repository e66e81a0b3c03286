// SPDX-License-Identifier: GPL-2.0-or-later
/* sys_nanosleep_abs: checkpointed inside clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) with a
 * deadline 1.5 s after ready. However the restore resumes it (restarted, or returned EINTR
 * and retried by the loop), it must not wake before the deadline as the process's own monotonic
 * clock sees it. */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += 1;
  deadline.tv_nsec += 500 * 1000 * 1000;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000;
  }
  zdtm_ready();
  int r, eintr = 0;
  while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL)) == EINTR) eintr++;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  ZDTM_CHECK(r == 0, "clock_nanosleep returned %d after %d EINTR", r, eintr);
  ZDTM_CHECK(now.tv_sec > deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec),
             "woke at %ld.%09ld, not before the deadline %ld.%09ld", (long)now.tv_sec, now.tv_nsec,
             (long)deadline.tv_sec, deadline.tv_nsec);
  zdtm_wait_go();
  return zdtm_finish();
}
