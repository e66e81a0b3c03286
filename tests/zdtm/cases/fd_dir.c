// SPDX-License-Identifier: GPL-2.0-or-later
/* fd_dir: a directory fd survives: it is still a directory, the same one, and openat/fstatat
 * relative to it reach files inside; fchdir to it works. */
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
  snprintf(dir, sizeof dir, "%s", zdtm_path("dir"));
  ZDTM_SETUP(mkdir(dir, 0755) == 0, "mkdir");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  ZDTM_SETUP(dfd >= 0, "open dir");
  int f = openat(dfd, "inside", O_WRONLY | O_CREAT, 0644);
  ZDTM_SETUP(f >= 0 && write(f, "abc", 3) == 3, "create inside");
  close(f);
  struct stat before;
  fstat(dfd, &before);
  zdtm_ready();
  zdtm_wait_go();
  struct stat now;
  ZDTM_CHECK(fstat(dfd, &now) == 0 && S_ISDIR(now.st_mode) && now.st_ino == before.st_ino, "same directory");
  ZDTM_CHECK((fcntl(dfd, F_GETFL) & O_DIRECTORY) != 0, "O_DIRECTORY flag");
  char buf[8] = {0};
  f = openat(dfd, "inside", O_RDONLY);
  ZDTM_CHECK(f >= 0 && read(f, buf, 8) == 3 && strcmp(buf, "abc") == 0, "openat relative to the dir fd");
  if (f >= 0) close(f);
  ZDTM_CHECK(fchdir(dfd) == 0 && access("inside", F_OK) == 0, "fchdir to it");
  return zdtm_finish();
}
