// SPDX-License-Identifier: GPL-2.0-or-later
/* tree_children: a parent with three running children (one with a child of its own), each holding
 * 4 MiB of its own pattern. At checkpoint time the parent is blocked in waitpid() (a pending wait)
 * and the children are waiting for go. After the restore each child checks its memory and that
 * its parent is still its parent (getppid), and exits with its own code; the parent's waitpid()
 * must collect exactly those codes: the parent links are real. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_common.h"

enum { kKids = 3, kBytes = 4 << 20 };

static int child_body(unsigned seed, pid_t parent) {
  unsigned char* m = malloc(kBytes);
  if (m == NULL) return 1;
  zdtm_fill(m, kBytes, seed);
  tree_child_wait_go();
  return zdtm_verify(m, kBytes, seed) == (size_t)-1 && getppid() == parent ? 0 : 1;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  pid_t me = getpid();
  pid_t kids[kKids];
  for (int i = 0; i < kKids; i++) {
    kids[i] = fork();
    ZDTM_SETUP(kids[i] >= 0, "fork");
    if (kids[i] == 0) {
      if (i == 2) {
        /* A grandchild: this child waits for it as the parent waits for us. */
        pid_t self = getpid();
        pid_t g = fork();
        if (g < 0) _exit(1);
        if (g == 0) _exit(child_body(900, self) == 0 ? 33 : 1);
        int st = 0;
        int bad = child_body(30 + (unsigned)i, me);
        if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 33) _exit(1);
        _exit(bad ? 1 : 10 + i);
      }
      _exit(child_body(30 + (unsigned)i, me) == 0 ? 10 + i : 1);
    }
  }
  zdtm_ready();
  /* Blocked here while checkpointed and restored: the wait goes on in the restored parent. */
  int seen = 0;
  for (int n = 0; n < kKids; n++) {
    int st = 0;
    pid_t p = waitpid(-1, &st, 0);
    int i = -1;
    for (int k = 0; k < kKids; k++)
      if (kids[k] == p) i = k;
    ZDTM_CHECK(i >= 0, "waitpid(-1) returned one of our children (%d)", (int)p);
    if (i < 0) break;
    ZDTM_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 10 + i, "child %d (pid %d) exited %d (status %#x)", i, (int)p,
               10 + i, st);
    seen++;
  }
  ZDTM_CHECK(seen == kKids && waitpid(-1, NULL, WNOHANG) == -1, "all %d children collected, none left", kKids);
  return zdtm_finish();
}
