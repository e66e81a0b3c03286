// SPDX-License-Identifier: GPL-2.0-or-later
/* tree_pgrp_orphaned: a process group whose leader is gone. The parent leads its session; child A
 * leads a group that child B joins, and B's child C inherits it; then A exits and the parent reaps
 * it, so group A lives on in B and C only (a pipeline whose first command finished). After the
 * restore B and C are still in group A (rebuilt with a placeholder that holds A's pid until they
 * joined), no process A exists, and the parent has no child but B. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_common.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(setsid() == getpid(), "setsid");
  pid_t me = getpid();
  pid_t a = fork();
  ZDTM_SETUP(a >= 0, "fork A");
  if (a == 0) {
    setpgid(0, 0);
    struct timespec t = {0, 100 * 1000 * 1000};
    nanosleep(&t, 0);
    _exit(0);
  }
  setpgid(a, a);
  pid_t b = fork();
  ZDTM_SETUP(b >= 0, "fork B");
  if (b == 0) {
    setpgid(0, a);
    pid_t c = fork();
    if (c < 0) _exit(1);
    if (c == 0) {
      tree_child_wait_go();
      _exit(getpgrp() == a && getsid(0) == me ? 0 : 1);
    }
    tree_child_wait_go();
    int st = -1;
    int ok = getpgrp() == a && getsid(0) == me && getpgid(c) == a;
    ok = ok && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    _exit(ok ? 0 : 1);
  }
  setpgid(b, a);
  int st = -1;
  ZDTM_SETUP(waitpid(a, &st, 0) == a, "reap A");
  ZDTM_SETUP(kill(a, 0) == -1 && errno == ESRCH && kill(-a, 0) == 0, "group A lives on without A");
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(getpgid(b) == a, "B is still in group %d (%d)", (int)a, (int)getpgid(b));
  errno = 0;
  ZDTM_CHECK(kill(a, 0) == -1 && errno == ESRCH, "no process %d exists", (int)a);
  ZDTM_CHECK(kill(-a, 0) == 0, "group %d exists", (int)a);
  st = -1;
  ZDTM_CHECK(waitpid(-1, &st, 0) == b && WIFEXITED(st) && WEXITSTATUS(st) == 0,
             "the only child is B, and B and C saw group %d (%#x)", (int)a, st);
  ZDTM_CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "no other child (the placeholder is gone)");
  return zdtm_finish();
}
