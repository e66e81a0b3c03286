// SPDX-License-Identifier: GPL-2.0-or-later
/* stdio_pipes: stdin and stdout are pipes to the outside (run with the stdio-pipes hook). Such
 * fds cannot move with the process; at restore the engine installs the restoring command's own
 * stdin/stdout as stand-ins. The case reads "before" from stdin before the checkpoint and
 * "after" once told go: the original pipe carries both lines (so the case also passes alone),
 * and the pipe given to `osmo restore` carries "after", so after a restore the second line can
 * only come from the stand-in. Its PASS lines reaching the output file prove the stdout one. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

/* Reads one line byte by byte (no buffering past the newline). */
static ssize_t read_line(char* buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    char c;
    ssize_t r = read(0, &c, 1);
    if (r <= 0) return r < 0 ? -1 : (ssize_t)n;
    if (c == '\n') break;
    buf[n++] = c;
  }
  buf[n] = '\0';
  return (ssize_t)n;
}

static bool is_fifo(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  char line[64];
  ZDTM_SETUP(is_fifo(0) && is_fifo(1), "stdin and stdout must be pipes (run with --hook stdio-pipes)");
  ZDTM_SETUP(read_line(line, sizeof line) >= 0 && strcmp(line, "before") == 0, "first stdin line '%s'", line);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(is_fifo(0) && is_fifo(1), "stdin and stdout are still pipes");
  ssize_t n = read_line(line, sizeof line);
  ZDTM_CHECK(n >= 0 && strcmp(line, "after") == 0, "next stdin line '%s', want 'after'", n >= 0 ? line : "(error)");
  char rest;
  ZDTM_CHECK(read(0, &rest, 1) == 0, "then EOF");
  return zdtm_finish();
}
