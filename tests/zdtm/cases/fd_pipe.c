// SPDX-License-Identifier: GPL-2.0-or-later
/* fd_pipe: a pipe inside the process with 20000 bytes buffered survives: the bytes come out in
 * order, the O_NONBLOCK read end reports EAGAIN when empty, a pipe resized to 256 KiB keeps its
 * size, and when the process closes its write end the read end sees EOF (so the restore did not
 * leave another write end open somewhere). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "zdtm.h"

enum { kBytes = 20000 };

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int p[2], q[2];
  ZDTM_SETUP(pipe2(p, 0) == 0 && pipe2(q, O_CLOEXEC) == 0, "pipe");
  ZDTM_SETUP(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0, "nonblock");
  ZDTM_SETUP(fcntl(q[1], F_SETPIPE_SZ, 256 * 1024) >= 256 * 1024, "F_SETPIPE_SZ");
  static unsigned char buf[kBytes];
  zdtm_fill(buf, kBytes, 401);
  ZDTM_SETUP(zdtm_write_all(p[1], buf, kBytes), "fill pipe");
  ZDTM_SETUP(write(q[1], "q", 1) == 1, "write q");
  zdtm_ready();
  zdtm_wait_go();
  static unsigned char got[kBytes];
  size_t n = 0;
  while (n < kBytes) {
    ssize_t r = read(p[0], got + n, kBytes - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  ZDTM_CHECK(n == kBytes && zdtm_verify(got, kBytes, 401) == (size_t)-1, "buffered bytes (%zu of %d) intact", n,
             kBytes);
  char c;
  ZDTM_CHECK(read(p[0], &c, 1) == -1 && errno == EAGAIN, "empty nonblocking read end gives EAGAIN");
  ZDTM_CHECK(fcntl(q[1], F_GETPIPE_SZ) == 256 * 1024, "pipe size %d", fcntl(q[1], F_GETPIPE_SZ));
  ZDTM_CHECK(fcntl(q[0], F_GETFD) == FD_CLOEXEC, "O_CLOEXEC pipe end keeps it");
  ZDTM_CHECK(read(q[0], &c, 1) == 1 && c == 'q', "second pipe byte");
  ZDTM_CHECK(write(p[1], "ab", 2) == 2 && read(p[0], got, 2) == 2 && got[0] == 'a', "pipe still connected");
  close(p[1]);
  fcntl(p[0], F_SETFL, 0);
  ZDTM_CHECK(read(p[0], &c, 1) == 0, "EOF after closing the only write end");
  return zdtm_finish();
}
