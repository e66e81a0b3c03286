// SPDX-License-Identifier: GPL-2.0-or-later
/* tree_common.h: helpers for the process-tree cases (tree_*.c), which the harness checkpoints with
 * `osmo checkpoint --tree`. Children never write to stdout (the harness reads the parent's lines
 * only): they report through their exit status, which the parent checks. */
#ifndef OSMO_TESTS_ZDTM_TREE_COMMON_H
#define OSMO_TESTS_ZDTM_TREE_COMMON_H

#include <time.h>

#include "zdtm.h"

/* A child's wait for WORKDIR/go: 10 ms steps, bounded like zdtm_wait_go (exit 3 when abandoned). */
static inline void tree_child_wait_go(void) {
  struct timespec ten = {0, 10 * 1000 * 1000};
  for (int i = 0; i < 10000 && !zdtm_go(); i++) nanosleep(&ten, 0);
  if (!zdtm_go()) _exit(3);
}

#endif
