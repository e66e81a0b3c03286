// SPDX-License-Identifier: GPL-2.0-or-later
/* regs_avx: the full 256-bit ymm0-ymm15 (upper halves included, which only the XSAVE area
 * carries) survive the checkpoint while held in registers across a raw-syscall wait loop. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "asm_wait.h"
#include "zdtm.h"

static const char* g_go;
static long g_iterations;
static uint8_t g_in[16][32];
static uint8_t g_out[16][32];

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(__builtin_cpu_supports("avx"), "this CPU has no AVX");
  g_go = zdtm_go_path();
  zdtm_fill(g_in, sizeof g_in, 211);
  zdtm_ready();
  __asm__ volatile(
      "vmovdqu 0+%[i], %%ymm0\n\t"    "vmovdqu 32+%[i], %%ymm1\n\t"
      "vmovdqu 64+%[i], %%ymm2\n\t"   "vmovdqu 96+%[i], %%ymm3\n\t"
      "vmovdqu 128+%[i], %%ymm4\n\t"  "vmovdqu 160+%[i], %%ymm5\n\t"
      "vmovdqu 192+%[i], %%ymm6\n\t"  "vmovdqu 224+%[i], %%ymm7\n\t"
      "vmovdqu 256+%[i], %%ymm8\n\t"  "vmovdqu 288+%[i], %%ymm9\n\t"
      "vmovdqu 320+%[i], %%ymm10\n\t" "vmovdqu 352+%[i], %%ymm11\n\t"
      "vmovdqu 384+%[i], %%ymm12\n\t" "vmovdqu 416+%[i], %%ymm13\n\t"
      "vmovdqu 448+%[i], %%ymm14\n\t" "vmovdqu 480+%[i], %%ymm15\n\t"
      ZDTM_ASM_WAIT_LOOP
      "vmovdqu %%ymm0, 0+%[o]\n\t"    "vmovdqu %%ymm1, 32+%[o]\n\t"
      "vmovdqu %%ymm2, 64+%[o]\n\t"   "vmovdqu %%ymm3, 96+%[o]\n\t"
      "vmovdqu %%ymm4, 128+%[o]\n\t"  "vmovdqu %%ymm5, 160+%[o]\n\t"
      "vmovdqu %%ymm6, 192+%[o]\n\t"  "vmovdqu %%ymm7, 224+%[o]\n\t"
      "vmovdqu %%ymm8, 256+%[o]\n\t"  "vmovdqu %%ymm9, 288+%[o]\n\t"
      "vmovdqu %%ymm10, 320+%[o]\n\t" "vmovdqu %%ymm11, 352+%[o]\n\t"
      "vmovdqu %%ymm12, 384+%[o]\n\t" "vmovdqu %%ymm13, 416+%[o]\n\t"
      "vmovdqu %%ymm14, 448+%[o]\n\t" "vmovdqu %%ymm15, 480+%[o]\n\t"
      "vzeroupper\n\t"
      : [o] "=m"(g_out), [n] "+m"(g_iterations)
      : [i] "m"(g_in), [go] "m"(g_go), [ts] "m"(zdtm_asm_ts)
      : "rax", "rdi", "rsi", "rcx", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  ZDTM_CHECK(g_iterations < kAsmWaitMax, "go seen after %ld waits", g_iterations);
  for (int i = 0; i < 16; i++) {
    ZDTM_CHECK(memcmp(g_out[i], g_in[i], 16) == 0, "ymm%d lower half intact", i);
    ZDTM_CHECK(memcmp(g_out[i] + 16, g_in[i] + 16, 16) == 0, "ymm%d upper half intact", i);
  }
  return zdtm_finish();
}
