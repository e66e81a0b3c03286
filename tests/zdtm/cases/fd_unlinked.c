// SPDX-License-Identifier: GPL-2.0-or-later
/* fd_unlinked: an open file whose name was unlinked survives with its content and offset; it
 * is still unlinked after restore (no name reappeared on disk, st_nlink 0, "(deleted)" link). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

enum { kLen = 100 * 1024 };

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  static char name[1024];
  snprintf(name, sizeof name, "%s", zdtm_path("ghost"));
  int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
  static unsigned char buf[kLen];
  zdtm_fill(buf, kLen, 601);
  ZDTM_SETUP(fd >= 0 && zdtm_write_all(fd, buf, kLen), "write");
  ZDTM_SETUP(unlink(name) == 0 && lseek(fd, 333, SEEK_SET) == 333, "unlink");
  zdtm_ready();
  zdtm_wait_go();
  static unsigned char got[kLen];
  ZDTM_CHECK(pread(fd, got, kLen, 0) == kLen && memcmp(got, buf, kLen) == 0, "content");
  ZDTM_CHECK(lseek(fd, 0, SEEK_CUR) == 333, "offset 333");
  struct stat st;
  ZDTM_CHECK(fstat(fd, &st) == 0 && st.st_nlink == 0 && st.st_size == kLen, "nlink %lu size %lld",
             (unsigned long)st.st_nlink, (long long)st.st_size);
  ZDTM_CHECK(access(name, F_OK) != 0, "no file reappeared at %s", name);
  char link[1100] = {0}, path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  readlink(path, link, sizeof link - 1);
  ZDTM_CHECK(strstr(link, "(deleted)") != NULL, "fd link '%s' says deleted", link);
  ZDTM_CHECK(pwrite(fd, "new", 3, kLen) == 3 && fstat(fd, &st) == 0 && st.st_size == kLen + 3, "still writable");
  return zdtm_finish();
}
