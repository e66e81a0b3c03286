// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_growsdown: a MAP_GROWSDOWN mapping (like a thread stack) keeps its content and its "gd"
 * flag, and still grows downwards on a fault just below it after restore. A PROT_NONE
 * reservation far below keeps other mappings out of the way; there is free space in between. */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const size_t page = 4096, reserve = 8 << 20;
  unsigned char* r = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ZDTM_SETUP(r != MAP_FAILED, "reserve");
  ZDTM_SETUP(munmap(r + reserve / 2, reserve / 2) == 0, "free upper half");
  unsigned char* g = mmap(r + reserve - 4 * page, 4 * page, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
  ZDTM_SETUP(g != MAP_FAILED, "mmap growsdown");
  zdtm_fill(g, 4 * page, 81);
  ZDTM_SETUP(zdtm_has_vmflag(g, "gd"), "no gd flag before checkpoint");
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(zdtm_verify(g, 4 * page, 81) == (size_t)-1, "content");
  ZDTM_CHECK(zdtm_has_vmflag(g, "gd"), "VmFlags still has gd");
  volatile unsigned char* below = g - 2 * page;
  *below = 0x42; /* faults, and the kernel extends the mapping */
  ZDTM_CHECK(*below == 0x42 && zdtm_has_vmflag((void*)below, "gd"), "mapping grew downwards");
  return zdtm_finish();
}
