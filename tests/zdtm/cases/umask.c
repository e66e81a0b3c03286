// SPDX-License-Identifier: GPL-2.0-or-later
/* umask: a non-default umask (027) survives and still applies to new files. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  umask(027);
  zdtm_ready();
  zdtm_wait_go();
  mode_t now = umask(027);
  ZDTM_CHECK(now == 027, "umask %03o, want 027", (unsigned)now);
  int fd = open(zdtm_path("umask-file"), O_WRONLY | O_CREAT | O_EXCL, 0777);
  struct stat st;
  ZDTM_CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0750, "new file mode %03o, want 750",
             fd >= 0 ? (unsigned)(st.st_mode & 0777) : 0u);
  if (fd >= 0) close(fd);
  return zdtm_finish();
}
