// SPDX-License-Identifier: GPL-2.0-or-later
/* prctl_misc: per-process flags set with prctl survive: no_new_privs, dumpable (off), child
 * subreaper, timer slack, THP disable, machine-check kill policy. */
#define _GNU_SOURCE
#include <sys/prctl.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "NO_NEW_PRIVS");
  ZDTM_SETUP(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "DUMPABLE");
  ZDTM_SETUP(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, "CHILD_SUBREAPER");
  ZDTM_SETUP(prctl(PR_SET_TIMERSLACK, 123456, 0, 0, 0) == 0, "TIMERSLACK");
  ZDTM_SETUP(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0, "THP_DISABLE");
  ZDTM_SETUP(prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0) == 0, "MCE_KILL");
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs");
  ZDTM_CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0, "dumpable off");
  int reaper = 0;
  prctl(PR_GET_CHILD_SUBREAPER, &reaper, 0, 0, 0);
  ZDTM_CHECK(reaper == 1, "child subreaper");
  ZDTM_CHECK(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == 123456, "timer slack %d", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
  ZDTM_CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP disabled");
  ZDTM_CHECK(prctl(PR_MCE_KILL_GET, 0, 0, 0, 0) == PR_MCE_KILL_EARLY, "MCE kill early");
  return zdtm_finish();
}
