// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_anon_big: a 96 MiB private anonymous region with holes: filled chunks, never-touched
 * chunks (must read as zero), chunks only read (mapped to the zero page), chunks dropped with
 * MADV_DONTNEED after being written (must read as zero again) and an munmap'ed hole in the middle
 * (must stay unmapped). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#include "zdtm.h"

enum { kChunk = 1 << 20, kChunks = 96 };

/* What each 1 MiB chunk holds. */
static int kind_of(int k) {
  if (k == 40 || k == 41) return 4; /* munmap'ed */
  return k % 4;                     /* 0 filled, 1 untouched, 2 read-only touched, 3 dontneed */
}

static bool all_zero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; i += 64)
    if (p[i] != 0) return false;
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return false;
  return true;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  unsigned char* base = mmap(NULL, (size_t)kChunk * kChunks, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ZDTM_SETUP(base != MAP_FAILED, "mmap 96 MiB");
  volatile unsigned sink = 0;
  for (int k = 0; k < kChunks; k++) {
    unsigned char* c = base + (size_t)k * kChunk;
    switch (kind_of(k)) {
      case 0: zdtm_fill(c, kChunk, 100 + (unsigned)k); break;
      case 2:
        for (size_t i = 0; i < kChunk; i += 4096) sink += c[i];
        break;
      case 3:
        zdtm_fill(c, kChunk, 7);
        ZDTM_SETUP(madvise(c, kChunk, MADV_DONTNEED) == 0, "madvise DONTNEED");
        break;
      case 4: ZDTM_SETUP(munmap(c, kChunk) == 0, "munmap hole"); break;
      default: break;
    }
  }
  (void)sink;
  zdtm_ready();
  zdtm_wait_go();
  int bad_filled = 0, bad_zero = 0, bad_hole = 0;
  for (int k = 0; k < kChunks; k++) {
    unsigned char* c = base + (size_t)k * kChunk;
    switch (kind_of(k)) {
      case 0: bad_filled += zdtm_verify(c, kChunk, 100 + (unsigned)k) != (size_t)-1; break;
      case 4:
        /* msync on an unmapped range fails with ENOMEM. */
        bad_hole += !(msync(c, kChunk, MS_ASYNC) == -1 && errno == ENOMEM);
        break;
      default: bad_zero += !all_zero(c, kChunk); break;
    }
  }
  ZDTM_CHECK(bad_filled == 0, "filled chunks keep their content (%d bad)", bad_filled);
  ZDTM_CHECK(bad_zero == 0, "untouched/read-only/DONTNEED chunks read as zero (%d bad)", bad_zero);
  ZDTM_CHECK(bad_hole == 0, "munmap'ed hole is still unmapped (%d bad)", bad_hole);
  return zdtm_finish();
}
