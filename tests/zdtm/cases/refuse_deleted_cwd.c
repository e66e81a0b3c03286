// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_deleted_cwd: the working directory was removed; a restore could not chdir into it, so
 * the engine must refuse at checkpoint. The process still works in its deleted cwd afterwards
 * (getcwd reports it as deleted; "." still resolves). */
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
  static char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", zdtm_path("gone"));
  ZDTM_SETUP(mkdir(dir, 0755) == 0 && chdir(dir) == 0 && rmdir(dir) == 0, "mkdir/chdir/rmdir %s", dir);
  zdtm_ready();
  zdtm_wait_go();
  struct stat st;
  ZDTM_CHECK(stat(".", &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0, "cwd is the deleted directory");
  char link[PATH_MAX] = {0};
  ZDTM_CHECK(readlink("/proc/self/cwd", link, sizeof link - 1) > 0 && strstr(link, "(deleted)") != NULL,
             "/proc/self/cwd '%s'", link);
  return zdtm_finish();
}
