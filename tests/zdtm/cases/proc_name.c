// SPDX-License-Identifier: GPL-2.0-or-later
/* proc_name: the task name set with PR_SET_NAME survives (PR_GET_NAME and /proc/self/comm). */
#define _GNU_SOURCE
#include <string.h>
#include <sys/prctl.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(prctl(PR_SET_NAME, "zdtm-renamed-x", 0, 0, 0) == 0, "PR_SET_NAME");
  zdtm_ready();
  zdtm_wait_go();
  char name[17] = {0};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  ZDTM_CHECK(strcmp(name, "zdtm-renamed-x") == 0, "PR_GET_NAME '%s'", name);
  char comm[64];
  zdtm_read_file("/proc/self/comm", comm, sizeof comm);
  ZDTM_CHECK(strcmp(comm, "zdtm-renamed-x\n") == 0, "/proc/self/comm '%s'", comm);
  return zdtm_finish();
}
