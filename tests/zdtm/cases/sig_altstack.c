// SPDX-License-Identifier: GPL-2.0-or-later
/* sig_altstack: the alternate signal stack (address, size, flags) survives, and a handler with
 * SA_ONSTACK runs on it after restore; a second, auto-disarming (SS_AUTODISARM) setup is
 * checked the same way. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "zdtm.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static volatile uintptr_t g_addr;
static volatile int g_inside_flags;
static void on_usr1(int sig) {
  (void)sig;
  int local;
  g_addr = (uintptr_t)&local;
  stack_t cur;
  sigaltstack(NULL, &cur);
  g_inside_flags = cur.ss_flags;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const size_t size = 128 * 1024;
  unsigned char* alt = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ZDTM_SETUP(alt != MAP_FAILED, "mmap");
  stack_t ss = {.ss_sp = alt, .ss_size = size, .ss_flags = (int)SS_AUTODISARM};
  ZDTM_SETUP(sigaltstack(&ss, NULL) == 0, "sigaltstack");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_ONSTACK;
  ZDTM_SETUP(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
  zdtm_ready();
  zdtm_wait_go();
  stack_t now;
  sigaltstack(NULL, &now);
  ZDTM_CHECK(now.ss_sp == alt && now.ss_size == size, "sigaltstack %p+%zu, want %p+%zu", now.ss_sp,
             now.ss_size, (void*)alt, size);
  ZDTM_CHECK((unsigned)now.ss_flags == SS_AUTODISARM, "ss_flags %#x, want SS_AUTODISARM", (unsigned)now.ss_flags);
  raise(SIGUSR1);
  ZDTM_CHECK(g_addr >= (uintptr_t)alt && g_addr < (uintptr_t)alt + size, "handler ran on the alternate stack");
  ZDTM_CHECK(g_inside_flags & SS_DISABLE, "SS_AUTODISARM disarmed it inside the handler");
  return zdtm_finish();
}
