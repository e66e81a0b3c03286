// SPDX-License-Identifier: GPL-2.0-or-later
/* creds: credentials after dropping root: distinct real/effective/saved uids and gids and a
 * supplementary group list all survive, as seen by the getres*id calls, getgroups and
 * /proc/self/status. */
#define _GNU_SOURCE
#include <grp.h>
#include <string.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  gid_t groups[] = {1001, 1002, 1003, 65534};
  ZDTM_SETUP(setgroups(4, groups) == 0, "setgroups");
  ZDTM_SETUP(setresgid(2001, 2002, 2003) == 0, "setresgid");
  ZDTM_SETUP(setresuid(3001, 3002, 3003) == 0, "setresuid");
  char uid_line[128], gid_line[128];
  zdtm_status_field("Uid", uid_line, sizeof uid_line);
  zdtm_status_field("Gid", gid_line, sizeof gid_line);
  zdtm_ready();
  zdtm_wait_go();
  uid_t r, e, s;
  gid_t rg, eg, sg;
  getresuid(&r, &e, &s);
  getresgid(&rg, &eg, &sg);
  ZDTM_CHECK(r == 3001 && e == 3002 && s == 3003, "uids %u/%u/%u", r, e, s);
  ZDTM_CHECK(rg == 2001 && eg == 2002 && sg == 2003, "gids %u/%u/%u", rg, eg, sg);
  gid_t now[16];
  int n = getgroups(16, now);
  ZDTM_CHECK(n == 4 && memcmp(now, groups, sizeof groups) == 0, "supplementary groups (%d)", n);
  char u2[128], g2[128];
  zdtm_status_field("Uid", u2, sizeof u2);
  zdtm_status_field("Gid", g2, sizeof g2);
  ZDTM_CHECK(strcmp(u2, uid_line) == 0, "status Uid '%s', before '%s' (fsuid included)", u2, uid_line);
  ZDTM_CHECK(strcmp(g2, gid_line) == 0, "status Gid '%s', before '%s'", g2, gid_line);
  return zdtm_finish();
}
