// SPDX-License-Identifier: GPL-2.0-or-later
/* cwd: the working directory (a subdirectory two levels down) survives: getcwd() names it and
 * relative paths resolve from it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  static char want[PATH_MAX];
  snprintf(want, sizeof want, "%s", zdtm_path("sub"));
  ZDTM_SETUP(mkdir(want, 0755) == 0, "mkdir %s", want);
  strncat(want, "/deeper", sizeof want - strlen(want) - 1);
  ZDTM_SETUP(mkdir(want, 0755) == 0 && chdir(want) == 0, "mkdir/chdir %s", want);
  int fd = open("marker", O_WRONLY | O_CREAT, 0644);
  ZDTM_SETUP(fd >= 0, "create marker");
  close(fd);
  ZDTM_SETUP(getcwd(want, sizeof want) != NULL, "getcwd");
  zdtm_ready();
  zdtm_wait_go();
  char now[PATH_MAX];
  ZDTM_CHECK(getcwd(now, sizeof now) != NULL && strcmp(now, want) == 0, "getcwd '%s', want '%s'", now, want);
  ZDTM_CHECK(access("marker", F_OK) == 0, "relative path resolves from the cwd");
  ZDTM_CHECK(access("../../ready", F_OK) == 0, "../.. is the work dir");
  return zdtm_finish();
}
