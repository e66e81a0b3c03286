// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_file_changed: the case keeps WORK/data open and mapped. The harness appends to the
 * file between checkpoint and restore, so the image no longer matches the file it refers to;
 * restore must refuse ("osmo restore: ...") instead of bringing the process back over a file
 * that changed under it, and must leave no half-restored process. Run alone (plain), the case
 * checks its view of the file is what it wrote. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  static unsigned char buf[16384];
  zdtm_fill(buf, sizeof buf, 901);
  int fd = open(zdtm_path("data"), O_RDWR | O_CREAT | O_TRUNC, 0644);
  ZDTM_SETUP(fd >= 0 && zdtm_write_all(fd, buf, sizeof buf), "write data");
  unsigned char* m = mmap(NULL, sizeof buf, PROT_READ, MAP_SHARED, fd, 0);
  ZDTM_SETUP(m != MAP_FAILED && lseek(fd, 100, SEEK_SET) == 100, "mmap");
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(memcmp(m, buf, sizeof buf) == 0, "mapped data as written");
  ZDTM_CHECK(lseek(fd, 0, SEEK_CUR) == 100, "offset 100");
  return zdtm_finish();
}
