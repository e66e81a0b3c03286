// SPDX-License-Identifier: GPL-2.0-or-later
/* fd_many: 300 fds spread over 3..1000 with gaps, every third one close-on-exec: after restore
 * exactly the same numbers are open (no more, no fewer), with the same flags. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "zdtm.h"

static bool wanted(int fd) { return fd >= 10 && fd < 1000 && fd % 3 == 1 && fd != 61; }

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int null = open("/dev/null", O_RDONLY);
  ZDTM_SETUP(null >= 0, "open");
  static bool open_before[1100];
  for (int fd = 10; fd < 1000; fd++)
    if (wanted(fd)) ZDTM_SETUP(dup3(null, fd, (fd % 9 == 1) ? O_CLOEXEC : 0) == fd, "dup3 %d", fd);
  close(null);
  for (int fd = 0; fd < 1100; fd++) open_before[fd] = fcntl(fd, F_GETFD) != -1;
  zdtm_ready();
  zdtm_wait_go();
  int missing = 0, extra = 0, badflags = 0;
  for (int fd = 0; fd < 1100; fd++) {
    int fl = fcntl(fd, F_GETFD);
    bool now = fl != -1;
    missing += open_before[fd] && !now;
    extra += !open_before[fd] && now;
    if (now && fd >= 10 && wanted(fd)) badflags += fl != ((fd % 9 == 1) ? FD_CLOEXEC : 0);
  }
  ZDTM_CHECK(missing == 0, "%d fds missing", missing);
  ZDTM_CHECK(extra == 0, "%d unexpected fds", extra);
  ZDTM_CHECK(badflags == 0, "%d fds with wrong close-on-exec", badflags);
  return zdtm_finish();
}
