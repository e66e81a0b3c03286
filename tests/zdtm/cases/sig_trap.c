// SPDX-License-Identifier: GPL-2.0-or-later
/* sig_trap: SIGTRAP's disposition survives, although the engine's injected code stops on int3,
 * whose SIGTRAP makes the kernel reset a blocked or ignored SIGTRAP disposition to SIG_DFL
 * (the original's disposition was silently changed by a mere checkpoint before the engine put
 * it back). SIG_TRAP_MODE 1: a handler (runtimes such as Go's install one); 2: SIG_IGN. */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#include "zdtm.h"

#ifndef SIG_TRAP_MODE
#error "define SIG_TRAP_MODE"
#endif

static volatile sig_atomic_t g_traps;
static void on_trap(int sig) {
  (void)sig;
  g_traps++;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_TRAP_MODE == 1 ? on_trap : SIG_IGN;
  sa.sa_flags = SA_RESTART;
  sigaddset(&sa.sa_mask, SIGUSR2);
  ZDTM_SETUP(sigaction(SIGTRAP, &sa, NULL) == 0, "sigaction SIGTRAP");
  struct sigaction before;
  ZDTM_SETUP(sigaction(SIGTRAP, NULL, &before) == 0, "read SIGTRAP");
  zdtm_ready();
  zdtm_wait_go();
  struct sigaction now;
  ZDTM_CHECK(sigaction(SIGTRAP, NULL, &now) == 0 && now.sa_handler == before.sa_handler &&
                 now.sa_flags == before.sa_flags && sigismember(&now.sa_mask, SIGUSR2),
             "SIGTRAP disposition unchanged (handler %p, before %p)", (void*)now.sa_handler,
             (void*)before.sa_handler);
  raise(SIGTRAP); /* with SIG_DFL this would kill the process */
  if (SIG_TRAP_MODE == 1)
    ZDTM_CHECK(g_traps == 1, "the SIGTRAP handler ran (%d)", (int)g_traps);
  else
    ZDTM_CHECK(g_traps == 0, "SIGTRAP ignored");
  return zdtm_finish();
}
