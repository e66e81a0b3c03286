// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_brk_malloc: the program break and the malloc heap. brk grown by sbrk with data, small
 * malloc blocks (in the brk heap) and a large one (its own mmap) keep their content; sbrk(0) is
 * unchanged; the heap still grows, shrinks and frees correctly after restore. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zdtm.h"

enum { kSmall = 200 };

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  static unsigned char* small[kSmall];
  for (int i = 0; i < kSmall; i++) {
    small[i] = malloc(100 + (size_t)i * 37);
    ZDTM_SETUP(small[i] != NULL, "malloc");
    zdtm_fill(small[i], 100 + (size_t)i * 37, 60 + (unsigned)i);
  }
  unsigned char* big = malloc(8 << 20);
  ZDTM_SETUP(big != NULL, "malloc big");
  zdtm_fill(big, 8 << 20, 59);
  unsigned char* brk_area = sbrk(3 << 20);
  ZDTM_SETUP(brk_area != (void*)-1, "sbrk");
  zdtm_fill(brk_area, 3 << 20, 58);
  void* brk_end = sbrk(0);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(sbrk(0) == brk_end, "sbrk(0) unchanged (%p vs %p)", sbrk(0), brk_end);
  ZDTM_CHECK(zdtm_verify(brk_area, 3 << 20, 58) == (size_t)-1, "sbrk'd area content");
  ZDTM_CHECK(zdtm_verify(big, 8 << 20, 59) == (size_t)-1, "large malloc block content");
  int bad = 0;
  for (int i = 0; i < kSmall; i++)
    bad += zdtm_verify(small[i], 100 + (size_t)i * 37, 60 + (unsigned)i) != (size_t)-1;
  ZDTM_CHECK(bad == 0, "small malloc blocks content (%d bad)", bad);
  unsigned char* more = sbrk(1 << 20);
  ZDTM_CHECK(more == brk_end, "brk grows from where it was");
  if (more != (void*)-1) {
    memset(more, 0x11, 1 << 20);
    ZDTM_CHECK(sbrk(-(1 << 20)) != (void*)-1 && sbrk(0) == brk_end, "brk shrinks back");
  }
  for (int i = 0; i < kSmall; i += 2) free(small[i]);
  free(big);
  void* again = malloc(1 << 16);
  ZDTM_CHECK(again != NULL, "malloc after free works");
  free(again);
  return zdtm_finish();
}
