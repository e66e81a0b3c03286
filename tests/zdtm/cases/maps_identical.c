// SPDX-License-Identifier: GPL-2.0-or-later
/* maps_identical: the whole address-space layout is the same after restore: /proc/self/maps
 * read just before ready and again after go must match line for line in range, permissions,
 * offset and path (device and inode numbers are left out: a restore may see the same files
 * through another mount). The stack is compared by its top end only: it may legitimately grow. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "zdtm.h"

static char g_raw[1 << 17];

/* Rewrites maps text into "start-end perms offset path" lines in out. */
static void normalize(const char* raw, char* out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (const char* line = raw; line && *line;) {
    const char* next = strchr(line, '\n');
    char one[600];
    size_t len = next ? (size_t)(next - line) : strlen(line);
    if (len >= sizeof one) len = sizeof one - 1;
    memcpy(one, line, len);
    one[len] = '\0';
    unsigned long lo, hi, off;
    char perms[8], path[512] = "";
    int n = sscanf(one, "%lx-%lx %7s %lx %*s %*s %511[^\n]", &lo, &hi, perms, &off, path);
    if (n >= 4) {
      if (strcmp(path, "[stack]") == 0) lo = 0;
      used += (size_t)snprintf(out + used, size - used, "%lx-%lx %s %lx %s\n", lo, hi, perms, off, path);
      if (used >= size) break;
    }
    line = next ? next + 1 : NULL;
  }
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  static char before[1 << 17], after[1 << 17];
  /* Reading maps needs an fd and a buffer; do it once before, so the first read's own effects
   * (none expected: static buffers) are in both snapshots. */
  zdtm_read_file("/proc/self/maps", g_raw, sizeof g_raw);
  zdtm_read_file("/proc/self/maps", g_raw, sizeof g_raw);
  normalize(g_raw, before, sizeof before);
  zdtm_ready();
  zdtm_wait_go();
  zdtm_read_file("/proc/self/maps", g_raw, sizeof g_raw);
  normalize(g_raw, after, sizeof after);
  bool same = strcmp(before, after) == 0;
  if (!same) {
    zdtm_info("before:\n%s", before);
    zdtm_info("after:\n%s", after);
  }
  ZDTM_CHECK(same, "/proc/self/maps layout unchanged");
  return zdtm_finish();
}
