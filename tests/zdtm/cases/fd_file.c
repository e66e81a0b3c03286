// SPDX-License-Identifier: GPL-2.0-or-later
/* fd_file: regular-file descriptors keep everything: access mode and status flags (O_RDWR,
 * O_WRONLY|O_APPEND, O_RDONLY, O_NONBLOCK|O_NOATIME), the close-on-exec flag, the offset, and
 * identity (same inode as the path); a read continues where it stopped and an O_APPEND write
 * still goes to the end. The numbers are not contiguous (one is dup2'ed to 57). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

enum { kLen = 8000 };

static int make(const char* name, unsigned seed) {
  static unsigned char buf[kLen];
  zdtm_fill(buf, kLen, seed);
  int fd = open(zdtm_path(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || !zdtm_write_all(fd, buf, kLen)) zdtm_setup_fail("create %s", name);
  close(fd);
  return 0;
}

static bool same_file(int fd, const char* name) {
  struct stat a, b;
  return fstat(fd, &a) == 0 && stat(zdtm_path(name), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  make("rw", 301);
  make("append", 302);
  make("ro", 303);
  make("flags", 304);
  int rw = open(zdtm_path("rw"), O_RDWR);
  int ap = open(zdtm_path("append"), O_WRONLY | O_APPEND);
  int ro0 = open(zdtm_path("ro"), O_RDONLY | O_CLOEXEC);
  int fl = open(zdtm_path("flags"), O_RDONLY | O_NONBLOCK | O_NOATIME);
  ZDTM_SETUP(rw >= 0 && ap >= 0 && ro0 >= 0 && fl >= 0, "open");
  int ro = dup3(ro0, 57, O_CLOEXEC);
  ZDTM_SETUP(ro == 57 && close(ro0) == 0, "dup3 57");
  ZDTM_SETUP(lseek(rw, 1234, SEEK_SET) == 1234 && lseek(ro, 77, SEEK_SET) == 77, "lseek");
  int fl_rw = fcntl(rw, F_GETFL), fl_ap = fcntl(ap, F_GETFL), fl_ro = fcntl(ro, F_GETFL), fl_fl = fcntl(fl, F_GETFL);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(fcntl(rw, F_GETFL) == fl_rw, "rw flags %#x, want %#x", fcntl(rw, F_GETFL), fl_rw);
  ZDTM_CHECK(fcntl(ap, F_GETFL) == fl_ap, "append flags %#x, want %#x", fcntl(ap, F_GETFL), fl_ap);
  ZDTM_CHECK(fcntl(ro, F_GETFL) == fl_ro, "ro flags %#x, want %#x", fcntl(ro, F_GETFL), fl_ro);
  ZDTM_CHECK(fcntl(fl, F_GETFL) == fl_fl, "nonblock|noatime flags %#x, want %#x", fcntl(fl, F_GETFL), fl_fl);
  ZDTM_CHECK(fcntl(ro, F_GETFD) == FD_CLOEXEC && fcntl(rw, F_GETFD) == 0, "close-on-exec flags");
  ZDTM_CHECK(same_file(rw, "rw") && same_file(ap, "append") && same_file(ro, "ro") && same_file(fl, "flags"),
             "each fd is the same file as its path");
  ZDTM_CHECK(lseek(rw, 0, SEEK_CUR) == 1234 && lseek(ro, 0, SEEK_CUR) == 77 && lseek(fl, 0, SEEK_CUR) == 0,
             "offsets 1234/77/0");
  unsigned char b[16];
  ZDTM_CHECK(read(ro, b, 16) == 16 && b[0] == zdtm_pattern(77, 303) && b[15] == zdtm_pattern(92, 303),
             "read continues at offset 77");
  ZDTM_CHECK(write(rw, "XY", 2) == 2 && lseek(rw, 0, SEEK_CUR) == 1236, "rw write at 1234");
  ZDTM_CHECK(write(ap, "tail", 4) == 4 && lseek(ap, 0, SEEK_END) == kLen + 4, "append write at the end");
  ZDTM_CHECK(fcntl(99, F_GETFD) == -1, "no extra fd at 99");
  return zdtm_finish();
}
