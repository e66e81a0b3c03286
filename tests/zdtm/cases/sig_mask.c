// SPDX-License-Identifier: GPL-2.0-or-later
/* sig_mask: the blocked-signal mask survives (standard and realtime signals, including
 * SIGRTMAX), seen both through sigprocmask() and /proc/self/status SigBlk. */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  sigset_t set;
  sigemptyset(&set);
  int sigs[] = {SIGUSR1, SIGINT, SIGQUIT, SIGCHLD, SIGALRM, SIGRTMIN + 5, SIGRTMIN + 13, SIGRTMAX};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&set, sigs[i]);
  ZDTM_SETUP(sigprocmask(SIG_SETMASK, &set, NULL) == 0, "sigprocmask");
  char before[64];
  zdtm_status_field("SigBlk", before, sizeof before);
  zdtm_ready();
  zdtm_wait_go();
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  int bad = 0;
  for (int s = 1; s < 65; s++) bad += sigismember(&now, s) != sigismember(&set, s);
  ZDTM_CHECK(bad == 0, "sigprocmask reports the same mask (%d signals differ)", bad);
  char after[64];
  zdtm_status_field("SigBlk", after, sizeof after);
  ZDTM_CHECK(strcmp(before, after) == 0, "SigBlk %s, before %s", after, before);
  return zdtm_finish();
}
