// SPDX-License-Identifier: GPL-2.0-or-later
/* tree_session: a shell-like tree. The parent leads a session of its own; child A leads a process
 * group (a pipeline's first command), child B is a member of A's group (the pipeline's second),
 * child C stays in the parent's group, and C's child D leads a group of its own. After the
 * restore every process checks its session and group, and the parent checks everyone's from
 * outside (getsid/getpgid) before collecting them. */
#define _GNU_SOURCE
#include <sys/wait.h>
#include <unistd.h>

#include "tree_common.h"

static int check_ids(pid_t sid, pid_t pgid) {
  tree_child_wait_go();
  return getsid(0) == sid && getpgrp() == pgid ? 0 : 1;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(setsid() == getpid(), "setsid");
  pid_t me = getpid();
  pid_t a = fork();
  ZDTM_SETUP(a >= 0, "fork");
  if (a == 0) {
    setpgid(0, 0);
    _exit(check_ids(me, getpid()));
  }
  setpgid(a, a);
  pid_t b = fork();
  ZDTM_SETUP(b >= 0, "fork");
  if (b == 0) {
    setpgid(0, a);
    _exit(check_ids(me, a));
  }
  setpgid(b, a);
  pid_t c = fork();
  ZDTM_SETUP(c >= 0, "fork");
  if (c == 0) {
    pid_t d = fork();
    if (d < 0) _exit(1);
    if (d == 0) {
      setpgid(0, 0);
      _exit(check_ids(me, getpid()));
    }
    setpgid(d, d);
    int bad = check_ids(me, me);
    int st = 0;
    if (waitpid(d, &st, 0) != d || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
    _exit(bad);
  }
  struct timespec ms = {0, 1000 * 1000};
  for (int i = 0; i < 5000 && (getpgid(a) != a || getpgid(b) != a); i++) nanosleep(&ms, 0);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(getsid(0) == me && getpgrp() == me, "parent leads its session and group");
  ZDTM_CHECK(getpgid(a) == a && getsid(a) == me, "A leads group %d in session %d (%d, %d)", (int)a, (int)me,
             (int)getpgid(a), (int)getsid(a));
  ZDTM_CHECK(getpgid(b) == a && getsid(b) == me, "B is in A's group (%d)", (int)getpgid(b));
  ZDTM_CHECK(getpgid(c) == me && getsid(c) == me, "C is in the parent's group (%d)", (int)getpgid(c));
  pid_t kids[3] = {a, b, c};
  for (int i = 0; i < 3; i++) {
    int st = -1;
    ZDTM_CHECK(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
               "child %c saw its own session and group (status %#x)", 'A' + i, st);
  }
  return zdtm_finish();
}
