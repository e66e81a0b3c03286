// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_tcp: TCP sockets (a listener and an established loopback connection) cannot be
 * checkpointed by the engine; it must refuse and leave them working: after go, data still
 * flows both ways over the connection. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  ZDTM_SETUP(l >= 0 && bind(l, (struct sockaddr*)&a, sizeof a) == 0 && listen(l, 4) == 0 &&
                 getsockname(l, (struct sockaddr*)&a, &al) == 0,
             "listen");
  int c = socket(AF_INET, SOCK_STREAM, 0);
  ZDTM_SETUP(c >= 0 && connect(c, (struct sockaddr*)&a, sizeof a) == 0, "connect");
  int s = accept(l, NULL, NULL);
  ZDTM_SETUP(s >= 0, "accept");
  zdtm_ready();
  zdtm_wait_go();
  char buf[8] = {0};
  ZDTM_CHECK(write(c, "ping", 4) == 4 && read(s, buf, 4) == 4 && strcmp(buf, "ping") == 0, "client -> server");
  ZDTM_CHECK(write(s, "pong", 4) == 4 && read(c, buf, 4) == 4 && strcmp(buf, "pong") == 0, "server -> client");
  return zdtm_finish();
}
