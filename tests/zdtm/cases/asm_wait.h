// SPDX-License-Identifier: GPL-2.0-or-later
/* asm_wait.h: the go-wait loop written in assembly, for the register cases. Between setting
 * registers to known values and reading them back, no compiled code may run (it could spill or
 * reuse them), so the loop calls access(go) and nanosleep(10 ms) with raw syscall instructions.
 * It touches only rax, rdi, rsi (and rcx, r11, which syscall clobbers); every other register is
 * left to the case. Operands the enclosing asm must provide:
 *   [go] "m" (const char* path of the go file)   [ts] "m" (struct timespec, 10 ms)
 *   [n]  "+m" (long iteration counter; the loop gives up after kAsmWaitMax iterations)
 * Clobbers to declare: "rax", "rdi", "rsi", "rcx", "r11", "memory", "cc". */
#ifndef OSMO_TESTS_ZDTM_ASM_WAIT_H
#define OSMO_TESTS_ZDTM_ASM_WAIT_H

#include <time.h>

#define kAsmWaitMax 10000 /* x 10 ms = 100 s, the same bound as zdtm_wait_go() */

#define ZDTM_ASM_WAIT_LOOP                                 \
  "1:\n\t"                                                 \
  "mov $21, %%eax\n\t" /* SYS_access */                    \
  "mov %[go], %%rdi\n\t"                                   \
  "xor %%esi, %%esi\n\t"                                   \
  "syscall\n\t"                                            \
  "test %%rax, %%rax\n\t"                                  \
  "jz 2f\n\t"                                              \
  "incq %[n]\n\t"                                          \
  "cmpq $" "10000" ", %[n]\n\t"                            \
  "jae 2f\n\t"                                             \
  "mov $35, %%eax\n\t" /* SYS_nanosleep */                 \
  "lea %[ts], %%rdi\n\t"                                   \
  "xor %%esi, %%esi\n\t"                                   \
  "syscall\n\t"                                            \
  "jmp 1b\n"                                               \
  "2:\n\t"

static const struct timespec zdtm_asm_ts = {0, 10 * 1000 * 1000};

#endif
