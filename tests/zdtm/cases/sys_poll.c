// SPDX-License-Identifier: GPL-2.0-or-later
/* sys_poll: checkpointed inside ppoll() on an empty pipe with a 50 ms timeout. Polls keep
 * timing out with nothing ready (or EINTR once), and after go a byte written into the pipe makes
 * ppoll report POLLIN, proving the restored pipe is the one being polled. select() on it too. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int p[2];
  ZDTM_SETUP(pipe(p) == 0, "pipe");
  zdtm_ready();
  const struct timespec ts = {0, 50 * 1000 * 1000};
  int spurious = 0, polls = 0;
  while (!zdtm_go() && !zdtm_waited_too_long()) {
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    int r = ppoll(&pfd, 1, &ts, NULL);
    spurious += !(r == 0 || (r == -1 && errno == EINTR));
    polls++;
  }
  ZDTM_CHECK(spurious == 0, "%d polls, none reported a ready fd (%d did)", polls, spurious);
  ZDTM_CHECK(write(p[1], "z", 1) == 1, "write into pipe");
  struct pollfd pfd = {.fd = p[0], .events = POLLIN};
  ZDTM_CHECK(ppoll(&pfd, 1, &ts, NULL) == 1 && (pfd.revents & POLLIN), "ppoll sees the byte");
  fd_set rfds;
  FD_ZERO(&rfds);
  FD_SET(p[0], &rfds);
  struct timeval tv = {0, 50000};
  ZDTM_CHECK(select(p[0] + 1, &rfds, NULL, NULL, &tv) == 1 && FD_ISSET(p[0], &rfds), "select sees the byte");
  return zdtm_finish();
}
