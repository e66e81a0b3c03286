// SPDX-License-Identifier: GPL-2.0-or-later
/* proc_cmdline_env: /proc/self/cmdline and /proc/self/environ are read by the kernel from the
 * process's own memory between the mm's arg_start/arg_end and env_start/env_end. The case
 * rewrites its argv[0] and an environment string in place; after restore both files must show
 * exactly the rewritten bytes (memory restored, and the mm's arg/env bounds too). */
#define _GNU_SOURCE
#include <string.h>

#include "zdtm.h"

extern char** environ;

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  size_t len0 = strlen(argv[0]);
  for (size_t i = 0; i < len0; i++) argv[0][i] = (char)('A' + (int)(i % 26));
  ZDTM_SETUP(environ[0] != NULL, "empty environment");
  size_t elen = strlen(environ[0]);
  for (size_t i = 0; i < elen; i++) environ[0][i] = (char)('a' + (int)(i % 26));
  static char cmd_before[1 << 16], env_before[1 << 16], cmd_after[1 << 16], env_after[1 << 16];
  long cl = zdtm_read_file("/proc/self/cmdline", cmd_before, sizeof cmd_before);
  long el = zdtm_read_file("/proc/self/environ", env_before, sizeof env_before);
  ZDTM_SETUP(cl > 0 && el > 0 && cmd_before[0] == 'A' && env_before[0] == 'a', "rewrite not visible in /proc");
  zdtm_ready();
  zdtm_wait_go();
  long cl2 = zdtm_read_file("/proc/self/cmdline", cmd_after, sizeof cmd_after);
  long el2 = zdtm_read_file("/proc/self/environ", env_after, sizeof env_after);
  ZDTM_CHECK(cl2 == cl && memcmp(cmd_before, cmd_after, (size_t)cl) == 0, "/proc/self/cmdline (%ld bytes, was %ld)",
             cl2, cl);
  ZDTM_CHECK(el2 == el && memcmp(env_before, env_after, (size_t)el) == 0, "/proc/self/environ (%ld bytes, was %ld)",
             el2, el);
  return zdtm_finish();
}
