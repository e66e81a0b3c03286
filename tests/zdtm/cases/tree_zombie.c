// SPDX-License-Identifier: GPL-2.0-or-later
/* tree_zombie: the parent has two zombie children it has not reaped yet (one exited with 42, one
 * killed by SIGTERM) and one live child. After the restore the zombies must still be zombies of
 * this parent ("Z" in /proc) and waitpid() must collect their original statuses; then the live
 * child. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_common.h"

static char state_of(pid_t p) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
  if (zdtm_read_file(path, buf, sizeof buf) <= 0) return '?';
  char* rp = strrchr(buf, ')');
  return rp != NULL && rp[1] == ' ' ? rp[2] : '?';
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  pid_t z1 = fork();
  ZDTM_SETUP(z1 >= 0, "fork");
  if (z1 == 0) _exit(42);
  pid_t z2 = fork();
  ZDTM_SETUP(z2 >= 0, "fork");
  if (z2 == 0) {
    raise(SIGTERM);
    _exit(1);
  }
  pid_t live = fork();
  ZDTM_SETUP(live >= 0, "fork");
  if (live == 0) {
    tree_child_wait_go();
    _exit(7);
  }
  struct timespec ms = {0, 1000 * 1000};
  for (int i = 0; i < 5000 && (state_of(z1) != 'Z' || state_of(z2) != 'Z'); i++) nanosleep(&ms, 0);
  ZDTM_SETUP(state_of(z1) == 'Z' && state_of(z2) == 'Z', "children did not become zombies");
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(state_of(z1) == 'Z', "pid %d is still a zombie (state %c)", (int)z1, state_of(z1));
  ZDTM_CHECK(state_of(z2) == 'Z', "pid %d is still a zombie (state %c)", (int)z2, state_of(z2));
  int st = -1;
  ZDTM_CHECK(waitpid(z1, &st, 0) == z1 && WIFEXITED(st) && WEXITSTATUS(st) == 42, "zombie 1 exit status 42 (%#x)",
             st);
  st = -1;
  ZDTM_CHECK(waitpid(z2, &st, 0) == z2 && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
             "zombie 2 killed by SIGTERM (%#x)", st);
  st = -1;
  ZDTM_CHECK(waitpid(live, &st, 0) == live && WIFEXITED(st) && WEXITSTATUS(st) == 7, "live child exit 7 (%#x)", st);
  ZDTM_CHECK(waitpid(-1, NULL, WNOHANG) == -1, "no other child");
  return zdtm_finish();
}
