// SPDX-License-Identifier: GPL-2.0-or-later
/* gs_base: a gs base set with arch_prctl(ARCH_SET_GS) survives: ARCH_GET_GS returns it and
 * %gs-relative loads read the block it points to. Nothing in glibc uses gs on x86_64, so only
 * the restore can have put it there. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

static uint64_t g_block[4] = {0x0badc0ffee0ddf00ull, 0x1122334455667788ull, 0, 0};

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)g_block) == 0, "ARCH_SET_GS");
  zdtm_ready();
  zdtm_wait_go();
  unsigned long base = 0;
  syscall(SYS_arch_prctl, ARCH_GET_GS, &base);
  ZDTM_CHECK(base == (uintptr_t)g_block, "ARCH_GET_GS %#lx, want %p", base, (void*)g_block);
  uint64_t a, b;
  __asm__ volatile("mov %%gs:0, %0\n\tmov %%gs:8, %1" : "=r"(a), "=r"(b));
  ZDTM_CHECK(a == g_block[0] && b == g_block[1], "%%gs:0/%%gs:8 read %#llx %#llx",
             (unsigned long long)a, (unsigned long long)b);
  return zdtm_finish();
}
