// SPDX-License-Identifier: GPL-2.0-or-later
/* clock_monotonic: CLOCK_MONOTONIC and CLOCK_BOOTTIME never go backwards across the restore
 * (the restored process has its own time namespace to make that so), and do not jump forward by
 * more than the wall-clock time that really passed. The wait loop compares each 10 ms step with
 * the previous one, so the step that spans the checkpoint and restore is checked too. */
#define _GNU_SOURCE
#include <time.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const struct timespec step = {0, 10 * 1000 * 1000};
  double prev_mono = zdtm_now(CLOCK_MONOTONIC), prev_boot = zdtm_now(CLOCK_BOOTTIME);
  double prev_real = zdtm_now(CLOCK_REALTIME);
  double worst_back_mono = 0, worst_back_boot = 0, worst_jump_mono = -1e9, worst_jump_boot = -1e9;
  long steps = 0;
  zdtm_ready();
  /* Compare every step with the one before: one of the steps spans the checkpoint and restore. */
  while (!zdtm_go() && !zdtm_waited_too_long()) {
    nanosleep(&step, NULL);
    double mono = zdtm_now(CLOCK_MONOTONIC), boot = zdtm_now(CLOCK_BOOTTIME);
    double real = zdtm_now(CLOCK_REALTIME);
    double wall = real - prev_real;
    if (prev_mono - mono > worst_back_mono) worst_back_mono = prev_mono - mono;
    if (prev_boot - boot > worst_back_boot) worst_back_boot = prev_boot - boot;
    if (mono - prev_mono - wall > worst_jump_mono) worst_jump_mono = mono - prev_mono - wall;
    if (boot - prev_boot - wall > worst_jump_boot) worst_jump_boot = boot - prev_boot - wall;
    prev_mono = mono;
    prev_boot = boot;
    prev_real = real;
    steps++;
  }
  ZDTM_CHECK(steps > 0, "%ld steps observed", steps);
  ZDTM_CHECK(worst_back_mono == 0, "CLOCK_MONOTONIC never went backwards (worst %.6f s)", worst_back_mono);
  ZDTM_CHECK(worst_back_boot == 0, "CLOCK_BOOTTIME never went backwards (worst %.6f s)", worst_back_boot);
  ZDTM_CHECK(worst_jump_mono < 1.0, "CLOCK_MONOTONIC never ran ahead of the wall clock by 1 s (worst %.3f s)",
             worst_jump_mono);
  ZDTM_CHECK(worst_jump_boot < 1.0, "CLOCK_BOOTTIME never ran ahead of the wall clock by 1 s (worst %.3f s)",
             worst_jump_boot);
  double mono_now = zdtm_now(CLOCK_MONOTONIC);
  double boot_now = zdtm_now(CLOCK_BOOTTIME);
  ZDTM_CHECK(boot_now >= mono_now, "BOOTTIME %.6f >= MONOTONIC %.6f", boot_now, mono_now);
  return zdtm_finish();
}
