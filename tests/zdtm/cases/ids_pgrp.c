// SPDX-License-Identifier: GPL-2.0-or-later
/* ids_pgrp: session and process group led by *other* processes survive the restore, as CRIU
 * rebuilds them with helper tasks.
 *   IDS_PGRP_MODE 1: the case leads its own process group (setpgid(0, 0)) inside the harness's
 *                    session, whose leader is some other process.
 *   IDS_PGRP_MODE 2: the case is a member of a process group whose leader (a child it made)
 *                    has exited and been reaped, inside the harness's session.
 * After go, getsid(0) and getpgrp() are what they were. Once restored (its parent is then the
 * restore's init, pid 1), its pid namespace holds only init and itself: the placeholder
 * processes that recreated the session and group are gone, not left as zombies. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#ifndef IDS_PGRP_MODE
#error "define IDS_PGRP_MODE"
#endif

/* Processes visible in /proc other than pid 1 and ourselves; -1 on error. */
static int other_processes(void) {
  DIR* d = opendir("/proc");
  if (d == NULL) return -1;
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    char* end;
    long p = strtol(e->d_name, &end, 10);
    if (*end != '\0' || p <= 0) continue;
    if (p != 1 && p != getpid()) {
      zdtm_info("other process in the namespace: %ld", p);
      n++;
    }
  }
  closedir(d);
  return n;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  pid_t me = getpid();
#if IDS_PGRP_MODE == 1
  ZDTM_SETUP(setpgid(0, 0) == 0, "setpgid(0, 0)");
#else
  int go[2];
  ZDTM_SETUP(pipe(go) == 0, "pipe");
  pid_t leader = fork();
  ZDTM_SETUP(leader >= 0, "fork");
  if (leader == 0) {
    char c;
    if (setpgid(0, 0) != 0) _exit(1);
    close(go[1]);
    _exit(read(go[0], &c, 1) == 0 ? 0 : 1); /* until the parent joined the group */
  }
  /* Both sides set the group, so the join below cannot race the child's own setpgid. */
  ZDTM_SETUP(setpgid(leader, leader) == 0 || getpgid(leader) == leader, "setpgid(leader)");
  ZDTM_SETUP(setpgid(0, leader) == 0, "join the leader's group");
  close(go[0]);
  close(go[1]);
  int st;
  ZDTM_SETUP(waitpid(leader, &st, 0) == leader && WIFEXITED(st) && WEXITSTATUS(st) == 0,
             "leader exit");
#endif
  pid_t sid = getsid(0), pgid = getpgrp();
  ZDTM_SETUP(sid > 0 && sid != me, "session led by another process (sid %d)", (int)sid);
#if IDS_PGRP_MODE == 1
  ZDTM_SETUP(pgid == me, "group leader");
#else
  ZDTM_SETUP(pgid == leader && pgid != sid, "member of the exited leader's group (pgid %d)",
             (int)pgid);
#endif
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(getpid() == me, "getpid %d, want %d", (int)getpid(), (int)me);
  ZDTM_CHECK(getsid(0) == sid, "getsid %d, want %d", (int)getsid(0), (int)sid);
  ZDTM_CHECK(getpgrp() == pgid, "getpgrp %d, want %d", (int)getpgrp(), (int)pgid);
  ZDTM_CHECK(getpgid(0) == pgid, "getpgid %d, want %d", (int)getpgid(0), (int)pgid);
  if (getppid() == 1) {
    int others = other_processes();
    ZDTM_CHECK(others == 0, "no placeholder left in the pid namespace (%d other processes)",
               others);
  }
  return zdtm_finish();
}
