// SPDX-License-Identifier: GPL-2.0-or-later
/* sys_futex: checkpointed inside FUTEX_WAIT with a 50 ms timeout on a private futex word. After
 * restore the waits keep ending only with ETIMEDOUT (or EINTR for the interrupted one), the word
 * keeps its value, and a wait on a changed value fails with EAGAIN as it should. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

static uint32_t g_word = 7;

static long futex(uint32_t* uaddr, int op, uint32_t val, const struct timespec* ts) {
  return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  zdtm_ready();
  const struct timespec ts = {0, 50 * 1000 * 1000};
  int timeouts = 0, eintr = 0, other = 0;
  while (!zdtm_go() && !zdtm_waited_too_long()) {
    long r = futex(&g_word, FUTEX_WAIT_PRIVATE, 7, &ts);
    if (r == -1 && errno == ETIMEDOUT) timeouts++;
    else if (r == -1 && errno == EINTR) eintr++;
    else other++;
  }
  ZDTM_CHECK(other == 0, "futex waits ended only by timeout or EINTR (%d timeouts, %d EINTR, %d other)", timeouts,
             eintr, other);
  ZDTM_CHECK(g_word == 7, "futex word %u", g_word);
  ZDTM_CHECK(futex(&g_word, FUTEX_WAIT_PRIVATE, 8, &ts) == -1 && errno == EAGAIN, "value mismatch -> EAGAIN");
  ZDTM_CHECK(futex(&g_word, FUTEX_WAKE_PRIVATE, 1, NULL) == 0, "wake with no waiters -> 0");
  return zdtm_finish();
}
