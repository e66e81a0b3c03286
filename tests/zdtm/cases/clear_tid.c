// SPDX-License-Identifier: GPL-2.0-or-later
/* clear_tid: the clear_child_tid address set with set_tid_address() survives; read back with
 * prctl(PR_GET_TID_ADDRESS) (CONFIG_CHECKPOINT_RESTORE). */
#define _GNU_SOURCE
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

static int g_tid_word = 12345;

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int* before = NULL;
  ZDTM_SETUP(prctl(PR_GET_TID_ADDRESS, &before) == 0, "PR_GET_TID_ADDRESS unsupported");
  long tid = syscall(SYS_set_tid_address, &g_tid_word);
  ZDTM_SETUP(tid == getpid(), "set_tid_address returned %ld", tid);
  zdtm_ready();
  zdtm_wait_go();
  int* now = NULL;
  ZDTM_CHECK(prctl(PR_GET_TID_ADDRESS, &now) == 0 && now == &g_tid_word, "clear_child_tid %p, want %p",
             (void*)now, (void*)&g_tid_word);
  ZDTM_CHECK(g_tid_word == 12345, "the word itself untouched (%d)", g_tid_word);
  return zdtm_finish();
}
