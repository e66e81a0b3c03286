// SPDX-License-Identifier: GPL-2.0-or-later
/* zdtm_proc.c: small /proc/self readers the cases use to compare kernel-visible state before the
 * checkpoint and after the restore (mapping permissions, VmFlags, status fields). Static buffers
 * only: these run both before ready and after go and must not disturb the heap under test. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zdtm.h"

static char g_buf[1 << 20];

long zdtm_read_file(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len + 1 < size) {
    ssize_t n = read(fd, buf + len, size - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  return (long)len;
}

/* Finds the maps/smaps line whose range holds addr; returns a pointer into g_buf or NULL. */
static char* find_range(const char* text_start, uintptr_t addr) {
  for (char* line = (char*)text_start; line && *line;) {
    char* next = strchr(line, '\n');
    unsigned long lo = 0, hi = 0;
    /* smaps has header lines ("lo-hi perms ...") and "Key: value" lines; only headers parse. */
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ') &&
        addr >= lo && addr < hi)
      return line;
    line = next ? next + 1 : NULL;
  }
  return NULL;
}

void zdtm_map_perms(const void* addr, char perms[8]) {
  perms[0] = '\0';
  if (zdtm_read_file("/proc/self/maps", g_buf, sizeof g_buf) < 0) return;
  char* line = find_range(g_buf, (uintptr_t)addr);
  if (line) sscanf(line, "%*[0-9a-f]-%*[0-9a-f] %7s", perms);
}

void zdtm_vmflags(const void* addr, char* buf, size_t size) {
  buf[0] = '\0';
  if (zdtm_read_file("/proc/self/smaps", g_buf, sizeof g_buf) < 0) return;
  char* line = find_range(g_buf, (uintptr_t)addr);
  if (!line) return;
  char* flags = strstr(line, "\nVmFlags:");
  if (!flags) return;
  flags += strlen("\nVmFlags:");
  while (*flags == ' ') flags++;
  size_t n = strcspn(flags, "\n");
  if (n >= size) n = size - 1;
  memcpy(buf, flags, n);
  buf[n] = '\0';
  while (n > 0 && buf[n - 1] == ' ') buf[--n] = '\0';
}

bool zdtm_has_vmflag(const void* addr, const char* flag) {
  char flags[256];
  zdtm_vmflags(addr, flags, sizeof flags);
  for (char* p = strtok(flags, " "); p; p = strtok(NULL, " "))
    if (strcmp(p, flag) == 0) return true;
  return false;
}

void zdtm_status_field(const char* key, char* buf, size_t size) {
  buf[0] = '\0';
  if (zdtm_read_file("/proc/self/status", g_buf, sizeof g_buf) < 0) return;
  size_t klen = strlen(key);
  for (char* line = g_buf; line && *line;) {
    char* next = strchr(line, '\n');
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      char* v = line + klen + 1;
      while (*v == ' ' || *v == '\t') v++;
      size_t n = next ? (size_t)(next - v) : strlen(v);
      if (n >= size) n = size - 1;
      memcpy(buf, v, n);
      buf[n] = '\0';
      return;
    }
    line = next ? next + 1 : NULL;
  }
}
