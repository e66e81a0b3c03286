// SPDX-License-Identifier: GPL-2.0-or-later
/* fd_devices: character-device fds survive and behave as the devices: /dev/null (writes vanish,
 * reads give EOF), /dev/zero (reads zeros), /dev/full (writes fail with ENOSPC), /dev/urandom
 * (reads bytes); same device numbers as before. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int null = open("/dev/null", O_RDWR), zero = open("/dev/zero", O_RDONLY);
  int full = open("/dev/full", O_WRONLY), urnd = open("/dev/urandom", O_RDONLY);
  ZDTM_SETUP(null >= 0 && zero >= 0 && full >= 0 && urnd >= 0, "open devices");
  struct stat b[4];
  int fds[4] = {null, zero, full, urnd};
  for (int i = 0; i < 4; i++) fstat(fds[i], &b[i]);
  zdtm_ready();
  zdtm_wait_go();
  for (int i = 0; i < 4; i++) {
    struct stat s;
    ZDTM_CHECK(fstat(fds[i], &s) == 0 && S_ISCHR(s.st_mode) && s.st_rdev == b[i].st_rdev, "fd %d device %#lx",
               fds[i], (unsigned long)b[i].st_rdev);
  }
  char buf[256];
  ZDTM_CHECK(write(null, "x", 1) == 1 && read(null, buf, 1) == 0, "/dev/null");
  memset(buf, 1, sizeof buf);
  bool zeros = read(zero, buf, sizeof buf) == (ssize_t)sizeof buf;
  for (size_t i = 0; i < sizeof buf; i++) zeros &= buf[i] == 0;
  ZDTM_CHECK(zeros, "/dev/zero reads zeros");
  ZDTM_CHECK(write(full, "x", 1) == -1 && errno == ENOSPC, "/dev/full gives ENOSPC");
  ZDTM_CHECK(read(urnd, buf, 64) == 64, "/dev/urandom reads");
  return zdtm_finish();
}
