// SPDX-License-Identifier: GPL-2.0-or-later
/* tree_pipeline: a writer child and a reader child joined by a pipe that the parent created (the
 * parent closes both ends). The writer has pushed 64 KiB into the pipe and is blocked writing more
 * when the tree is checkpointed; the reader reads nothing until go. After the restore the reader
 * must read every byte in order (the buffered ones first) and then EOF once the writer is done;
 * the parent's waitpid() collects both. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_common.h"

enum { kBytes = 1 << 20 };
static unsigned char buf[kBytes];

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int p[2];
  ZDTM_SETUP(pipe(p) == 0, "pipe");
  zdtm_fill(buf, kBytes, 77);
  pid_t w = fork();
  ZDTM_SETUP(w >= 0, "fork writer");
  if (w == 0) {
    close(p[0]);
    _exit(zdtm_write_all(p[1], buf, kBytes) ? 0 : 1);  /* blocks on the full pipe until go */
  }
  pid_t r = fork();
  ZDTM_SETUP(r >= 0, "fork reader");
  if (r == 0) {
    close(p[1]);
    tree_child_wait_go();
    static unsigned char got[kBytes];
    size_t n = 0;
    for (;;) {
      ssize_t k = read(p[0], got + n, kBytes - n);
      if (k <= 0) break;
      n += (size_t)k;
      if (n == kBytes) break;
    }
    char c;
    ssize_t eof = read(p[0], &c, 1);
    _exit(n == kBytes && zdtm_verify(got, kBytes, 77) == (size_t)-1 && eof == 0 ? 0 : 1);
  }
  close(p[0]);
  close(p[1]);
  /* Ready once the writer is blocked: the pipe is full. */
  struct timespec ms = {0, 1000 * 1000};
  for (int i = 0; i < 5000; i++) {
    char path[64], wchan[64] = "";
    snprintf(path, sizeof path, "/proc/%d/wchan", (int)w);
    zdtm_read_file(path, wchan, sizeof wchan);
    if (strstr(wchan, "pipe_write") != NULL) break;
    nanosleep(&ms, 0);
  }
  zdtm_ready();
  int sw = -1, sr = -1;
  ZDTM_CHECK(waitpid(w, &sw, 0) == w, "waitpid writer");
  ZDTM_CHECK(waitpid(r, &sr, 0) == r, "waitpid reader");
  ZDTM_CHECK(WIFEXITED(sw) && WEXITSTATUS(sw) == 0, "writer wrote all %d bytes (status %#x)", kBytes, sw);
  ZDTM_CHECK(WIFEXITED(sr) && WEXITSTATUS(sr) == 0, "reader read all %d bytes in order, then EOF (status %#x)",
             kBytes, sr);
  return zdtm_finish();
}
