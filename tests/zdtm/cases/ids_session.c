// SPDX-License-Identifier: GPL-2.0-or-later
/* ids_session: a process that made itself a session and process-group leader (setsid) is
 * still one after restore: getsid(0) == getpgrp() == getpid(). */
#define _GNU_SOURCE
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(setsid() == getpid(), "setsid");
  zdtm_ready();
  zdtm_wait_go();
  pid_t me = getpid();
  ZDTM_CHECK(getsid(0) == me, "getsid %d, want %d", (int)getsid(0), (int)me);
  ZDTM_CHECK(getpgrp() == me, "getpgrp %d, want %d", (int)getpgrp(), (int)me);
  return zdtm_finish();
}
