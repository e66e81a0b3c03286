// SPDX-License-Identifier: GPL-2.0-or-later
/* fd_memfd: a memfd with 300 KiB of content, seals (no shrink, no grow), a file offset and a
 * shared mapping of it survives: the content through read and through the mapping, the seals,
 * the offset, the name in /proc/self/fd, and the mapping still shares pages with the fd. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

enum { kLen = 300 * 1024 };

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int fd = memfd_create("zdtm-memfd", MFD_ALLOW_SEALING);
  ZDTM_SETUP(fd >= 0, "memfd_create");
  static unsigned char buf[kLen];
  zdtm_fill(buf, kLen, 501);
  ZDTM_SETUP(zdtm_write_all(fd, buf, kLen), "write");
  unsigned char* m = mmap(NULL, kLen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ZDTM_SETUP(m != MAP_FAILED, "mmap");
  memcpy(m + 4096, "mapped", 6);
  ZDTM_SETUP(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0, "seals");
  ZDTM_SETUP(lseek(fd, 1000, SEEK_SET) == 1000, "lseek");
  memcpy(buf + 4096, "mapped", 6);
  zdtm_ready();
  zdtm_wait_go();
  static unsigned char got[kLen];
  ZDTM_CHECK(pread(fd, got, kLen, 0) == kLen && memcmp(got, buf, kLen) == 0, "content through the fd");
  ZDTM_CHECK(memcmp(m, buf, kLen) == 0, "content through the mapping");
  ZDTM_CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "seals %#x", fcntl(fd, F_GET_SEALS));
  ZDTM_CHECK(ftruncate(fd, 10) == -1, "shrink still refused");
  ZDTM_CHECK(lseek(fd, 0, SEEK_CUR) == 1000, "offset 1000");
  char link[128] = {0}, path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  readlink(path, link, sizeof link - 1);
  ZDTM_CHECK(strncmp(link, "/memfd:zdtm-memfd", 17) == 0, "fd link '%s'", link);
  memcpy(m, "again", 5);
  ZDTM_CHECK(pread(fd, got, 5, 0) == 5 && memcmp(got, "again", 5) == 0, "mapping still shares pages with the fd");
  return zdtm_finish();
}
