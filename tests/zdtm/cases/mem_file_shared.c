// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_file_shared: a MAP_SHARED file mapping written through memory before the checkpoint.
 * After restore the content is there and the mapping is still the file's page cache, not a
 * copy: a write through the mapping reaches the file and a pwrite to the file shows in memory. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const size_t len = 8 * 4096;
  static char path[1024];
  snprintf(path, sizeof path, "%s", zdtm_path("mapped-shared"));
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  ZDTM_SETUP(fd >= 0 && ftruncate(fd, (off_t)len) == 0, "create %s", path);
  unsigned char* m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ZDTM_SETUP(m != MAP_FAILED, "mmap");
  close(fd);
  zdtm_fill(m, len, 41);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(zdtm_verify(m, len, 41) == (size_t)-1, "mapping content");
  static unsigned char buf[8 * 4096];
  fd = open(path, O_RDWR);
  ZDTM_SETUP(fd >= 0, "reopen %s", path);
  ZDTM_CHECK(pread(fd, buf, len, 0) == (ssize_t)len && zdtm_verify(buf, len, 41) == (size_t)-1,
             "file holds what was written through the mapping");
  zdtm_fill(m, len, 42);
  ZDTM_CHECK(msync(m, len, MS_SYNC) == 0, "msync");
  ZDTM_CHECK(pread(fd, buf, len, 0) == (ssize_t)len && zdtm_verify(buf, len, 42) == (size_t)-1,
             "write through the restored mapping reaches the file");
  ZDTM_CHECK(pwrite(fd, "hello", 5, 4096) == 5 && memcmp(m + 4096, "hello", 5) == 0,
             "pwrite to the file shows in the restored mapping");
  close(fd);
  char perms[8];
  zdtm_map_perms(m, perms);
  ZDTM_CHECK(strcmp(perms, "rw-s") == 0, "mapping perms %s, want rw-s", perms);
  return zdtm_finish();
}
