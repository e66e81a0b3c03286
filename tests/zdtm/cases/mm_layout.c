// SPDX-License-Identifier: GPL-2.0-or-later
/* mm_layout: the mm's bookkeeping fields survive: /proc/self/stat start_code, end_code,
 * start_stack, start_data, end_data, start_brk, arg_start/end, env_start/end; /proc/self/auxv
 * byte for byte; /proc/self/exe still names the program's binary. (A restore that only copies
 * memory gets these wrong, and tools that read them, ps included, show garbage.) */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zdtm.h"

/* Fields 26-28 and 45-51 of /proc/self/stat, joined in one string. */
static void stat_fields(char* out, size_t size) {
  static char buf[4096];
  out[0] = '\0';
  if (zdtm_read_file("/proc/self/stat", buf, sizeof buf) <= 0) return;
  char* p = strrchr(buf, ')'); /* the comm field may contain spaces */
  if (!p) return;
  int field = 2;
  size_t used = 0;
  for (char* tok = strtok(p + 1, " \n"); tok; tok = strtok(NULL, " \n")) {
    field++;
    if ((field >= 26 && field <= 28) || (field >= 45 && field <= 51))
      used += (size_t)snprintf(out + used, size - used, "%d=%s ", field, tok);
  }
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  static char stat_before[1024], stat_after[1024], auxv_before[4096], auxv_after[4096];
  char exe_before[PATH_MAX] = {0}, exe_after[PATH_MAX] = {0};
  stat_fields(stat_before, sizeof stat_before);
  long al = zdtm_read_file("/proc/self/auxv", auxv_before, sizeof auxv_before);
  ZDTM_SETUP(readlink("/proc/self/exe", exe_before, sizeof exe_before - 1) > 0, "readlink exe");
  zdtm_ready();
  zdtm_wait_go();
  stat_fields(stat_after, sizeof stat_after);
  long al2 = zdtm_read_file("/proc/self/auxv", auxv_after, sizeof auxv_after);
  readlink("/proc/self/exe", exe_after, sizeof exe_after - 1);
  ZDTM_CHECK(strcmp(stat_before, stat_after) == 0, "/proc/self/stat mm fields: '%s', before '%s'", stat_after,
             stat_before);
  ZDTM_CHECK(al > 0 && al2 == al && memcmp(auxv_before, auxv_after, (size_t)al) == 0, "/proc/self/auxv (%ld bytes)",
             al2);
  ZDTM_CHECK(strcmp(exe_before, exe_after) == 0, "/proc/self/exe '%s', before '%s'", exe_after, exe_before);
  return zdtm_finish();
}
