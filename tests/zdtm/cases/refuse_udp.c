// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_udp: a bound UDP socket cannot be checkpointed; the engine must refuse and the socket
 * keeps working (a datagram to itself arrives after go). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  ZDTM_SETUP(u >= 0 && bind(u, (struct sockaddr*)&a, sizeof a) == 0 && getsockname(u, (struct sockaddr*)&a, &al) == 0,
             "bind");
  zdtm_ready();
  zdtm_wait_go();
  char buf[8] = {0};
  ZDTM_CHECK(sendto(u, "dgram", 5, 0, (struct sockaddr*)&a, sizeof a) == 5 && recv(u, buf, 8, 0) == 5 &&
                 strcmp(buf, "dgram") == 0,
             "datagram to itself");
  return zdtm_finish();
}
