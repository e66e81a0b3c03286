// SPDX-License-Identifier: GPL-2.0-or-later
/* fd_opath: O_PATH fds (one on a file, one on a directory) survive as O_PATH: fstat works,
 * the directory one anchors openat, and the file can be reopened through /proc/self/fd. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int w = open(zdtm_path("target"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ZDTM_SETUP(w >= 0 && write(w, "opath", 5) == 5, "create target");
  close(w);
  int f = open(zdtm_path("target"), O_PATH);
  int d = open(zdtm_path(""), O_PATH | O_DIRECTORY);
  ZDTM_SETUP(f >= 0 && d >= 0, "open O_PATH");
  struct stat fb;
  fstat(f, &fb);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK((fcntl(f, F_GETFL) & O_PATH) && (fcntl(d, F_GETFL) & O_PATH), "both still O_PATH");
  struct stat s;
  ZDTM_CHECK(fstat(f, &s) == 0 && s.st_ino == fb.st_ino && s.st_size == 5, "fstat the file");
  char buf[8] = {0};
  int r = openat(d, "target", O_RDONLY);
  ZDTM_CHECK(r >= 0 && read(r, buf, 8) == 5 && strcmp(buf, "opath") == 0, "openat through the dir O_PATH fd");
  if (r >= 0) close(r);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", f);
  memset(buf, 0, sizeof buf);
  r = open(proc, O_RDONLY);
  ZDTM_CHECK(r >= 0 && read(r, buf, 8) == 5 && strcmp(buf, "opath") == 0, "reopen via /proc/self/fd");
  if (r >= 0) close(r);
  char c;
  ZDTM_CHECK(read(f, &c, 1) == -1, "an O_PATH fd cannot read");
  return zdtm_finish();
}
