// SPDX-License-Identifier: GPL-2.0-or-later
/* ids: the restored process has the pid and tid it had (inside its new PID namespace). */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  pid_t pid = getpid();
  long tid = syscall(SYS_gettid);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(getpid() == pid, "getpid %d, want %d", (int)getpid(), (int)pid);
  ZDTM_CHECK(syscall(SYS_gettid) == tid, "gettid %ld, want %ld", syscall(SYS_gettid), tid);
  ZDTM_CHECK(syscall(SYS_getpid) == pid, "raw getpid %ld", syscall(SYS_getpid));
  return zdtm_finish();
}
