// SPDX-License-Identifier: GPL-2.0-or-later
/* regs_avx512: AVX-512 state: all 32 zmm registers (512 bits each; zmm16-31 exist only in the
 * AVX-512 XSAVE components) and the opmask registers k0-k7, held across the checkpoint in a
 * raw-syscall wait loop. The compiler is not built for AVX-512, so it never touches zmm16-31 or
 * the k registers; only zmm0-15 need to be declared clobbered. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "asm_wait.h"
#include "zdtm.h"

static const char* g_go;
static long g_iterations;
static uint8_t g_in[32][64];
static uint8_t g_out[32][64];
static uint64_t g_k_in[8] = {0x1, 0x8000000000000000ull, 0xdeadbeefcafef00dull, 0x5555555555555555ull,
                             0xaaaaaaaaaaaaaaaaull, 0x0123456789abcdefull, 0xffffffffffffffffull, 0x42};
static uint64_t g_k_out[8];

#define LOADZ(r, off) "vmovdqu64 " #off "+%[i], %%zmm" #r "\n\t"
#define STOREZ(r, off) "vmovdqu64 %%zmm" #r ", " #off "+%[o]\n\t"
#define LOADK(r, off) "kmovq " #off "+%[ki], %%k" #r "\n\t"
#define STOREK(r, off) "kmovq %%k" #r ", " #off "+%[ko]\n\t"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"),
             "this CPU has no AVX-512F/BW");
  g_go = zdtm_go_path();
  zdtm_fill(g_in, sizeof g_in, 221);
  zdtm_ready();
  __asm__ volatile(
      LOADZ(0, 0) LOADZ(1, 64) LOADZ(2, 128) LOADZ(3, 192) LOADZ(4, 256) LOADZ(5, 320)
      LOADZ(6, 384) LOADZ(7, 448) LOADZ(8, 512) LOADZ(9, 576) LOADZ(10, 640) LOADZ(11, 704)
      LOADZ(12, 768) LOADZ(13, 832) LOADZ(14, 896) LOADZ(15, 960) LOADZ(16, 1024) LOADZ(17, 1088)
      LOADZ(18, 1152) LOADZ(19, 1216) LOADZ(20, 1280) LOADZ(21, 1344) LOADZ(22, 1408)
      LOADZ(23, 1472) LOADZ(24, 1536) LOADZ(25, 1600) LOADZ(26, 1664) LOADZ(27, 1728)
      LOADZ(28, 1792) LOADZ(29, 1856) LOADZ(30, 1920) LOADZ(31, 1984)
      LOADK(0, 0) LOADK(1, 8) LOADK(2, 16) LOADK(3, 24) LOADK(4, 32) LOADK(5, 40) LOADK(6, 48)
      LOADK(7, 56)
      ZDTM_ASM_WAIT_LOOP
      STOREZ(0, 0) STOREZ(1, 64) STOREZ(2, 128) STOREZ(3, 192) STOREZ(4, 256) STOREZ(5, 320)
      STOREZ(6, 384) STOREZ(7, 448) STOREZ(8, 512) STOREZ(9, 576) STOREZ(10, 640) STOREZ(11, 704)
      STOREZ(12, 768) STOREZ(13, 832) STOREZ(14, 896) STOREZ(15, 960) STOREZ(16, 1024)
      STOREZ(17, 1088) STOREZ(18, 1152) STOREZ(19, 1216) STOREZ(20, 1280) STOREZ(21, 1344)
      STOREZ(22, 1408) STOREZ(23, 1472) STOREZ(24, 1536) STOREZ(25, 1600) STOREZ(26, 1664)
      STOREZ(27, 1728) STOREZ(28, 1792) STOREZ(29, 1856) STOREZ(30, 1920) STOREZ(31, 1984)
      STOREK(0, 0) STOREK(1, 8) STOREK(2, 16) STOREK(3, 24) STOREK(4, 32) STOREK(5, 40)
      STOREK(6, 48) STOREK(7, 56)
      "vzeroupper\n\t"
      : [o] "=m"(g_out), [ko] "=m"(g_k_out), [n] "+m"(g_iterations)
      : [i] "m"(g_in), [ki] "m"(g_k_in), [go] "m"(g_go), [ts] "m"(zdtm_asm_ts)
      : "rax", "rdi", "rsi", "rcx", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  ZDTM_CHECK(g_iterations < kAsmWaitMax, "go seen after %ld waits", g_iterations);
  int bad_low = 0, bad_high = 0;
  for (int i = 0; i < 32; i++) {
    bool ok = memcmp(g_out[i], g_in[i], 64) == 0;
    if (!ok) zdtm_info("zmm%d differs", i);
    if (i < 16) bad_low += !ok;
    else bad_high += !ok;
  }
  ZDTM_CHECK(bad_low == 0, "zmm0-15 (512 bits) intact (%d bad)", bad_low);
  ZDTM_CHECK(bad_high == 0, "zmm16-31 intact (%d bad)", bad_high);
  for (int i = 0; i < 8; i++)
    ZDTM_CHECK(g_k_out[i] == g_k_in[i], "k%d = %#llx, want %#llx", i,
               (unsigned long long)g_k_out[i], (unsigned long long)g_k_in[i]);
  return zdtm_finish();
}
