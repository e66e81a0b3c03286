// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_ptraced: the harness attaches zdtm_tracer (PTRACE_SEIZE) before the checkpoint; a
 * process someone else traces cannot be checkpointed (a task has one tracer), so the engine
 * must refuse, leaving the tracer attached. The case's own state (a pattern in memory and a
 * signal handler the tracer passes signals through to) must be unaffected. */
#define _GNU_SOURCE
#include <signal.h>

#include "zdtm.h"

static unsigned char g_data[65536];
static volatile sig_atomic_t g_usr1;
static void on_usr1(int sig) { (void)sig; g_usr1++; }

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  zdtm_fill(g_data, sizeof g_data, 801);
  signal(SIGUSR1, on_usr1);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(zdtm_verify(g_data, sizeof g_data, 801) == (size_t)-1, "memory intact");
  raise(SIGUSR1);
  ZDTM_CHECK(g_usr1 == 1, "signal handler runs");
  return zdtm_finish();
}
