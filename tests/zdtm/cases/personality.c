// SPDX-License-Identifier: GPL-2.0-or-later
/* personality: the execution domain flags survive (ADDR_NO_RANDOMIZE | UNAME26 |
 * READ_IMPLIES_EXEC); UNAME26 is visible through uname(), which must report a 2.6.x release. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/personality.h>
#include <sys/utsname.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  unsigned long want = ADDR_NO_RANDOMIZE | UNAME26 | READ_IMPLIES_EXEC;
  ZDTM_SETUP(personality(want) != -1, "personality");
  zdtm_ready();
  zdtm_wait_go();
  int now = personality(0xffffffff);
  ZDTM_CHECK((unsigned long)now == want, "personality %#x, want %#lx", now, want);
  struct utsname u;
  uname(&u);
  ZDTM_CHECK(strncmp(u.release, "2.6.", 4) == 0, "uname release '%s' (UNAME26)", u.release);
  return zdtm_finish();
}
