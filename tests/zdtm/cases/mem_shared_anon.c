// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_shared_anon: a MAP_SHARED|MAP_ANONYMOUS region and a second mapping of the same pages (made
 * with mremap(old_size=0)). After restore both must hold the data and still be one object: a
 * write through one is seen through the other. */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const size_t len = 64 * 4096;
  unsigned char* a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ZDTM_SETUP(a != MAP_FAILED, "mmap shared anon");
  unsigned char* b = mremap(a, 0, len, MREMAP_MAYMOVE);
  ZDTM_SETUP(b != MAP_FAILED, "mremap alias");
  zdtm_fill(a, len, 21);
  ZDTM_SETUP(zdtm_verify(b, len, 21) == (size_t)-1, "alias does not share pages before checkpoint");
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(zdtm_verify(a, len, 21) == (size_t)-1, "first mapping content");
  ZDTM_CHECK(zdtm_verify(b, len, 21) == (size_t)-1, "alias mapping content");
  char perms[8];
  zdtm_map_perms(a, perms);
  ZDTM_CHECK(perms[3] == 's', "first mapping is shared (perms %s)", perms);
  zdtm_fill(b, len, 22);
  ZDTM_CHECK(zdtm_verify(a, len, 22) == (size_t)-1, "write through alias visible in first mapping");
  a[5] = 0x77;
  ZDTM_CHECK(b[5] == 0x77, "write through first mapping visible in alias");
  return zdtm_finish();
}
