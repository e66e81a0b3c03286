// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_file_private: a MAP_PRIVATE file mapping with some pages modified (copied on write) and
 * others untouched. After restore the modified pages keep the private data, untouched pages show
 * the file, the file itself is unchanged, and the mapping still names the file. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

enum { kPages = 16 };
static const int kModified[] = {0, 5, 6, 15};

static bool modified(int p) {
  for (size_t i = 0; i < sizeof kModified / sizeof kModified[0]; i++)
    if (kModified[i] == p) return true;
  return false;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const size_t page = 4096, len = kPages * page;
  static unsigned char file_data[kPages * 4096];
  static char path[1024];
  snprintf(path, sizeof path, "%s", zdtm_path("mapped-private"));
  zdtm_fill(file_data, len, 31);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  ZDTM_SETUP(fd >= 0 && zdtm_write_all(fd, file_data, len), "write %s", path);
  unsigned char* m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ZDTM_SETUP(m != MAP_FAILED, "mmap");
  close(fd);
  for (int p = 0; p < kPages; p++)
    if (modified(p)) zdtm_fill(m + p * page, page, 32 + (unsigned)p);
  zdtm_ready();
  zdtm_wait_go();
  int bad_mod = 0, bad_clean = 0;
  for (int p = 0; p < kPages; p++) {
    if (modified(p))
      bad_mod += zdtm_verify(m + p * page, page, 32 + (unsigned)p) != (size_t)-1;
    else
      bad_clean += memcmp(m + p * page, file_data + p * page, page) != 0;
  }
  ZDTM_CHECK(bad_mod == 0, "privately modified pages keep their data (%d bad)", bad_mod);
  ZDTM_CHECK(bad_clean == 0, "untouched pages show the file (%d bad)", bad_clean);
  static unsigned char now[kPages * 4096];
  fd = open(path, O_RDONLY);
  ZDTM_CHECK(fd >= 0 && pread(fd, now, len, 0) == (ssize_t)len && memcmp(now, file_data, len) == 0,
             "file on disk unchanged by private writes");
  if (fd >= 0) close(fd);
  char perms[8];
  zdtm_map_perms(m, perms);
  ZDTM_CHECK(strcmp(perms, "rw-p") == 0, "mapping perms %s, want rw-p", perms);
  static char maps[1 << 16];
  zdtm_read_file("/proc/self/maps", maps, sizeof maps);
  ZDTM_CHECK(strstr(maps, path) != NULL, "/proc/self/maps still names %s", path);
  return zdtm_finish();
}
