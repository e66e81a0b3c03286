// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_anon_small: small private anonymous mappings, initialized data and bss must come back
 * byte for byte at the same addresses. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "zdtm.h"

static unsigned char g_data[3000] = {1, 2, 3};
static unsigned char g_bss[20000];

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const size_t page = 4096;
  unsigned char* one = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char* many =
      mmap(NULL, 16 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ZDTM_SETUP(one != MAP_FAILED && many != MAP_FAILED, "mmap");
  zdtm_fill(one, page, 11);
  zdtm_fill(many, 16 * page, 12);
  zdtm_fill(g_data, sizeof g_data, 13);
  zdtm_fill(g_bss, sizeof g_bss, 14);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(zdtm_verify(one, page, 11) == (size_t)-1, "one-page mapping content");
  ZDTM_CHECK(zdtm_verify(many, 16 * page, 12) == (size_t)-1, "16-page mapping content");
  ZDTM_CHECK(zdtm_verify(g_data, sizeof g_data, 13) == (size_t)-1, ".data content");
  ZDTM_CHECK(zdtm_verify(g_bss, sizeof g_bss, 14) == (size_t)-1, ".bss content");
  /* Still ordinary writable private memory. */
  memset(many, 0x5a, 16 * page);
  ZDTM_CHECK(many[16 * page - 1] == 0x5a, "mapping writable after restore");
  return zdtm_finish();
}
