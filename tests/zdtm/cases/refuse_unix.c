// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_unix: a unix socketpair with a message in flight cannot be checkpointed; the engine
 * must refuse and the pair keeps working (the queued message is still there after go). */
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int sv[2];
  ZDTM_SETUP(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0 && write(sv[0], "queued", 6) == 6, "socketpair");
  zdtm_ready();
  zdtm_wait_go();
  char buf[8] = {0};
  ZDTM_CHECK(read(sv[1], buf, 8) == 6 && strcmp(buf, "queued") == 0, "queued message intact");
  ZDTM_CHECK(write(sv[1], "back", 4) == 4 && read(sv[0], buf, 8) == 4, "pair still connected");
  return zdtm_finish();
}
