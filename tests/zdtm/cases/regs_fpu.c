// SPDX-License-Identifier: GPL-2.0-or-later
/* regs_fpu: x87 and SSE state across the checkpoint: all eight x87 stack registers, a
 * non-default x87 control word (round toward zero, 64-bit precision), a non-default MXCSR
 * (round toward zero, flush-to-zero, denormals-are-zero) and xmm0-xmm15, all held in registers
 * while the process waits in a raw-syscall loop. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "asm_wait.h"
#include "zdtm.h"

static const char* g_go;
static long g_iterations;
static double g_st_in[8] = {1.5, -2.25, 3.125, 1e300, -1e-300, 6.02214076e23, 0.1, -0.0};
static double g_st_out[8];
static uint8_t g_xmm_in[16][16];
static uint8_t g_xmm_out[16][16];
static uint16_t g_cw_in = 0x0F7F, g_cw_out;
static uint32_t g_mxcsr_in = 0xFFC0, g_mxcsr_out;

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  g_go = zdtm_go_path();
  zdtm_fill(g_xmm_in, sizeof g_xmm_in, 201);
  uint16_t cw_default;
  uint32_t mxcsr_default;
  __asm__ volatile("fnstcw %0\n\tstmxcsr %1" : "=m"(cw_default), "=m"(mxcsr_default));
  zdtm_ready();
  __asm__ volatile(
      "fninit\n\t"
      "fldcw %[cwi]\n\t"
      "ldmxcsr %[mxi]\n\t"
      "fldl 56+%[sti]\n\t" "fldl 48+%[sti]\n\t" "fldl 40+%[sti]\n\t" "fldl 32+%[sti]\n\t"
      "fldl 24+%[sti]\n\t" "fldl 16+%[sti]\n\t" "fldl 8+%[sti]\n\t" "fldl 0+%[sti]\n\t"
      "movdqu 0+%[xi], %%xmm0\n\t"    "movdqu 16+%[xi], %%xmm1\n\t"
      "movdqu 32+%[xi], %%xmm2\n\t"   "movdqu 48+%[xi], %%xmm3\n\t"
      "movdqu 64+%[xi], %%xmm4\n\t"   "movdqu 80+%[xi], %%xmm5\n\t"
      "movdqu 96+%[xi], %%xmm6\n\t"   "movdqu 112+%[xi], %%xmm7\n\t"
      "movdqu 128+%[xi], %%xmm8\n\t"  "movdqu 144+%[xi], %%xmm9\n\t"
      "movdqu 160+%[xi], %%xmm10\n\t" "movdqu 176+%[xi], %%xmm11\n\t"
      "movdqu 192+%[xi], %%xmm12\n\t" "movdqu 208+%[xi], %%xmm13\n\t"
      "movdqu 224+%[xi], %%xmm14\n\t" "movdqu 240+%[xi], %%xmm15\n\t"
      ZDTM_ASM_WAIT_LOOP
      "movdqu %%xmm0, 0+%[xo]\n\t"    "movdqu %%xmm1, 16+%[xo]\n\t"
      "movdqu %%xmm2, 32+%[xo]\n\t"   "movdqu %%xmm3, 48+%[xo]\n\t"
      "movdqu %%xmm4, 64+%[xo]\n\t"   "movdqu %%xmm5, 80+%[xo]\n\t"
      "movdqu %%xmm6, 96+%[xo]\n\t"   "movdqu %%xmm7, 112+%[xo]\n\t"
      "movdqu %%xmm8, 128+%[xo]\n\t"  "movdqu %%xmm9, 144+%[xo]\n\t"
      "movdqu %%xmm10, 160+%[xo]\n\t" "movdqu %%xmm11, 176+%[xo]\n\t"
      "movdqu %%xmm12, 192+%[xo]\n\t" "movdqu %%xmm13, 208+%[xo]\n\t"
      "movdqu %%xmm14, 224+%[xo]\n\t" "movdqu %%xmm15, 240+%[xo]\n\t"
      "fstpl 0+%[sto]\n\t" "fstpl 8+%[sto]\n\t" "fstpl 16+%[sto]\n\t" "fstpl 24+%[sto]\n\t"
      "fstpl 32+%[sto]\n\t" "fstpl 40+%[sto]\n\t" "fstpl 48+%[sto]\n\t" "fstpl 56+%[sto]\n\t"
      "fnstcw %[cwo]\n\t"
      "stmxcsr %[mxo]\n\t"
      "fldcw %[cwd]\n\t"
      "ldmxcsr %[mxd]\n\t"
      : [xo] "=m"(g_xmm_out), [sto] "=m"(g_st_out), [cwo] "=m"(g_cw_out), [mxo] "=m"(g_mxcsr_out),
        [n] "+m"(g_iterations)
      : [xi] "m"(g_xmm_in), [sti] "m"(g_st_in), [cwi] "m"(g_cw_in), [mxi] "m"(g_mxcsr_in),
        [cwd] "m"(cw_default), [mxd] "m"(mxcsr_default), [go] "m"(g_go), [ts] "m"(zdtm_asm_ts)
      : "rax", "rdi", "rsi", "rcx", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
        "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
  ZDTM_CHECK(g_iterations < kAsmWaitMax, "go seen after %ld waits", g_iterations);
  for (int i = 0; i < 8; i++)
    ZDTM_CHECK(memcmp(&g_st_out[i], &g_st_in[i], sizeof(double)) == 0, "st(%d) = %g, want %g", i,
               g_st_out[i], g_st_in[i]);
  for (int i = 0; i < 16; i++)
    ZDTM_CHECK(memcmp(g_xmm_out[i], g_xmm_in[i], 16) == 0, "xmm%d intact", i);
  ZDTM_CHECK(g_cw_out == g_cw_in, "x87 control word %#x, want %#x", g_cw_out, g_cw_in);
  ZDTM_CHECK(g_mxcsr_out == g_mxcsr_in, "MXCSR %#x, want %#x", g_mxcsr_out, g_mxcsr_in);
  return zdtm_finish();
}
