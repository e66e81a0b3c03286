// SPDX-License-Identifier: GPL-2.0-or-later
/* fd_dup: several fds sharing one open file description (dup, dup2 to 100, fcntl F_DUPFD) keep
 * sharing it after restore (a seek through one moves all), an independent open of the same file
 * keeps its own offset, and close-on-exec stays a per-fd flag. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int a = open(zdtm_path("shared"), O_RDWR | O_CREAT | O_TRUNC, 0644);
  ZDTM_SETUP(a >= 0 && ftruncate(a, 10000) == 0, "create");
  int b = dup(a);
  int c = dup2(a, 100);
  int d = fcntl(a, F_DUPFD_CLOEXEC, 200);
  int other = open(zdtm_path("shared"), O_RDWR);
  ZDTM_SETUP(b >= 0 && c == 100 && d >= 200 && other >= 0, "dup");
  ZDTM_SETUP(lseek(a, 500, SEEK_SET) == 500 && lseek(other, 9, SEEK_SET) == 9, "lseek");
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(lseek(b, 0, SEEK_CUR) == 500 && lseek(c, 0, SEEK_CUR) == 500 && lseek(d, 0, SEEK_CUR) == 500,
             "duplicates at offset 500");
  lseek(b, 700, SEEK_SET);
  ZDTM_CHECK(lseek(a, 0, SEEK_CUR) == 700 && lseek(c, 0, SEEK_CUR) == 700 && lseek(d, 0, SEEK_CUR) == 700,
             "seek through one moves all duplicates");
  ZDTM_CHECK(lseek(other, 0, SEEK_CUR) == 9, "independent open keeps offset 9");
  ZDTM_CHECK(fcntl(d, F_GETFD) == FD_CLOEXEC && fcntl(a, F_GETFD) == 0 && fcntl(c, F_GETFD) == 0,
             "close-on-exec per fd");
  fcntl(a, F_SETFL, O_APPEND);
  ZDTM_CHECK((fcntl(c, F_GETFL) & O_APPEND) && !(fcntl(other, F_GETFL) & O_APPEND),
             "status flags shared by duplicates only");
  return zdtm_finish();
}
