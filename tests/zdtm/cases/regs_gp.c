// SPDX-License-Identifier: GPL-2.0-or-later
/* regs_gp: general-purpose registers hold their values across the checkpoint. rbx, rbp, rdx,
 * r8-r10 and r12-r15 are loaded with distinct patterns, the process waits for go in a loop of raw
 * syscalls (which preserve them), and the values are stored and compared afterwards. The restore
 * must bring back every register of the interrupted syscall exactly. */
#define _GNU_SOURCE
#include <stdint.h>

#include "asm_wait.h"
#include "zdtm.h"

static const char* g_go;
static long g_iterations;
static uint64_t g_out[10];
static const uint64_t kWant[10] = {
    0x1111222233334444ull, 0x5555666677778888ull, 0x99990000aaaabbbbull, 0xccccddddeeeeffffull,
    0x0123456789abcdefull, 0xfedcba9876543210ull, 0x0f0f0f0f0f0f0f0full, 0xf0f0f0f0f0f0f0f0ull,
    0x8000000000000001ull, 0x7fffffffffffffffull};
static const char* const kName[10] = {"rbx", "rbp", "rdx", "r8", "r9", "r10", "r12", "r13", "r14", "r15"};

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  g_go = zdtm_go_path();
  zdtm_ready();
  __asm__ volatile(
      "push %%rbp\n\t"
      "mov 0+%[w], %%rbx\n\t"
      "mov 8+%[w], %%rbp\n\t"
      "mov 16+%[w], %%rdx\n\t"
      "mov 24+%[w], %%r8\n\t"
      "mov 32+%[w], %%r9\n\t"
      "mov 40+%[w], %%r10\n\t"
      "mov 48+%[w], %%r12\n\t"
      "mov 56+%[w], %%r13\n\t"
      "mov 64+%[w], %%r14\n\t"
      "mov 72+%[w], %%r15\n\t"
      ZDTM_ASM_WAIT_LOOP
      "mov %%rbx, 0+%[o]\n\t"
      "mov %%rbp, 8+%[o]\n\t"
      "mov %%rdx, 16+%[o]\n\t"
      "mov %%r8, 24+%[o]\n\t"
      "mov %%r9, 32+%[o]\n\t"
      "mov %%r10, 40+%[o]\n\t"
      "mov %%r12, 48+%[o]\n\t"
      "mov %%r13, 56+%[o]\n\t"
      "mov %%r14, 64+%[o]\n\t"
      "mov %%r15, 72+%[o]\n\t"
      "pop %%rbp\n\t"
      : [o] "=m"(g_out), [n] "+m"(g_iterations)
      : [w] "m"(kWant), [go] "m"(g_go), [ts] "m"(zdtm_asm_ts)
      : "rax", "rbx", "rdx", "rdi", "rsi", "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
        "r15", "memory", "cc");
  ZDTM_CHECK(g_iterations < kAsmWaitMax, "go seen after %ld waits", g_iterations);
  for (int i = 0; i < 10; i++)
    ZDTM_CHECK(g_out[i] == kWant[i], "%s = %#llx, want %#llx", kName[i],
               (unsigned long long)g_out[i], (unsigned long long)kWant[i]);
  return zdtm_finish();
}
