// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_mremap: regions moved and grown with mremap: grown in place or moved (MAYMOVE), moved to a
 * chosen address (FIXED), and moved with MREMAP_DONTUNMAP, which leaves the old range mapped but
 * empty. Contents and layout must survive. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const size_t page = 4096;
  unsigned char* a = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ZDTM_SETUP(a != MAP_FAILED, "mmap a");
  zdtm_fill(a, 4 * page, 71);
  unsigned char* grown = mremap(a, 4 * page, 64 * page, MREMAP_MAYMOVE);
  ZDTM_SETUP(grown != MAP_FAILED, "mremap grow");
  zdtm_fill(grown + 4 * page, 60 * page, 72);
  /* Reserve a target and move b onto it. */
  unsigned char* target = mmap(NULL, 8 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char* b = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ZDTM_SETUP(target != MAP_FAILED && b != MAP_FAILED, "mmap b");
  zdtm_fill(b, 8 * page, 73);
  unsigned char* moved = mremap(b, 8 * page, 8 * page, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  ZDTM_SETUP(moved == target, "mremap fixed");
  unsigned char* c = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ZDTM_SETUP(c != MAP_FAILED, "mmap c");
  zdtm_fill(c, 4 * page, 74);
  /* Raw syscall: glibc's variadic wrapper passes an undefined new_address unless MREMAP_FIXED is
   * set, and this kernel rejects it for DONTUNMAP. */
  unsigned char* c2 = (unsigned char*)syscall(SYS_mremap, c, 4 * page, 4 * page,
                                              MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
  ZDTM_SETUP(c2 != MAP_FAILED, "mremap dontunmap");
  /* Whatever now occupies b's old range (later mmaps may reuse it) must be the same after. */
  bool old_b_mapped = msync(b, 8 * page, MS_ASYNC) == 0;
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(zdtm_verify(grown, 4 * page, 71) == (size_t)-1, "grown region keeps old part");
  ZDTM_CHECK(zdtm_verify(grown + 4 * page, 60 * page, 72) == (size_t)-1, "grown region new part");
  ZDTM_CHECK(zdtm_verify(moved, 8 * page, 73) == (size_t)-1, "fixed-moved region content");
  ZDTM_CHECK((msync(b, 8 * page, MS_ASYNC) == 0) == old_b_mapped, "old range of moved region %s",
             old_b_mapped ? "mapped as before" : "still unmapped");
  ZDTM_CHECK(zdtm_verify(c2, 4 * page, 74) == (size_t)-1, "DONTUNMAP destination content");
  bool zero = true;
  for (size_t i = 0; i < 4 * page; i++) zero &= c[i] == 0;
  ZDTM_CHECK(zero, "DONTUNMAP source is mapped and empty");
  char perms[8];
  zdtm_map_perms(grown + 63 * page, perms);
  ZDTM_CHECK(strcmp(perms, "rw-p") == 0, "grown region end mapped rw-p (%s)", perms);
  return zdtm_finish();
}
