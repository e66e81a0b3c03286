// SPDX-License-Identifier: GPL-2.0-or-later
/* sig_handlers: signal dispositions survive: for every signal 1..64 the handler, flags and
 * sa_mask read with sigaction() are the same after restore, and the handlers still run with their
 * semantics: SA_SIGINFO gets the queued value, SA_RESETHAND resets after one delivery, sa_mask
 * is applied while the handler runs, SA_ONSTACK runs on the alternate stack, SIG_IGN ignores. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

static volatile sig_atomic_t g_usr1, g_usr2, g_hup, g_term, g_rt;
static volatile int g_usr2_value, g_rt_value;
static volatile int g_usr1_saw_usr2_blocked;
static volatile uintptr_t g_hup_stack_addr;
static unsigned char* g_alt;
enum { kAltSize = 64 * 1024 };

static void on_usr1(int sig) {
  (void)sig;
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  g_usr1_saw_usr2_blocked = sigismember(&cur, SIGUSR2);
  g_usr1++;
}
static void on_usr2(int sig, siginfo_t* si, void* uc) {
  (void)sig;
  (void)uc;
  g_usr2_value = si->si_value.sival_int;
  g_usr2++;
}
static void on_hup(int sig) {
  (void)sig;
  int local;
  g_hup_stack_addr = (uintptr_t)&local;
  g_hup++;
}
static void on_term(int sig) { (void)sig; g_term++; }
static void on_rt(int sig, siginfo_t* si, void* uc) {
  (void)sig;
  (void)uc;
  g_rt_value = si->si_value.sival_int;
  g_rt++;
}

static struct sigaction g_before[65];

static bool same_action(const struct sigaction* a, const struct sigaction* b) {
  if (a->sa_handler != b->sa_handler || a->sa_flags != b->sa_flags) return false;
  for (int s = 1; s < 65; s++)
    if (sigismember(&a->sa_mask, s) != sigismember(&b->sa_mask, s)) return false;
  return true;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  g_alt = mmap(NULL, kAltSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ZDTM_SETUP(g_alt != MAP_FAILED, "mmap altstack");
  stack_t ss = {.ss_sp = g_alt, .ss_size = kAltSize, .ss_flags = 0};
  ZDTM_SETUP(sigaltstack(&ss, NULL) == 0, "sigaltstack");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaddset(&sa.sa_mask, SIGRTMIN + 4);
  ZDTM_SETUP(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction USR1");
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr2;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  ZDTM_SETUP(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction USR2");
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_hup;
  sa.sa_flags = SA_ONSTACK | SA_NODEFER;
  ZDTM_SETUP(sigaction(SIGHUP, &sa, NULL) == 0, "sigaction HUP");
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sa.sa_flags = SA_RESETHAND;
  ZDTM_SETUP(sigaction(SIGTERM, &sa, NULL) == 0, "sigaction TERM");
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO;
  ZDTM_SETUP(sigaction(SIGRTMIN + 2, &sa, NULL) == 0, "sigaction RTMIN+2");
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  ZDTM_SETUP(sigaction(SIGPIPE, &sa, NULL) == 0 && sigaction(SIGWINCH, &sa, NULL) == 0, "SIG_IGN");
  for (int s = 1; s < 65; s++) sigaction(s, NULL, &g_before[s]);
  zdtm_ready();
  zdtm_wait_go();
  int bad = 0;
  for (int s = 1; s < 65; s++) {
    struct sigaction now;
    if (sigaction(s, NULL, &now) != 0) continue;
    if (!same_action(&now, &g_before[s])) {
      zdtm_info("signal %d: handler %p flags %#x, before %p flags %#x", s, (void*)now.sa_handler,
                (unsigned)now.sa_flags, (void*)g_before[s].sa_handler, (unsigned)g_before[s].sa_flags);
      bad++;
    }
  }
  ZDTM_CHECK(bad == 0, "sigaction() of all 64 signals unchanged (%d differ)", bad);
  raise(SIGUSR1);
  ZDTM_CHECK(g_usr1 == 1 && g_usr1_saw_usr2_blocked, "USR1 handler ran with its sa_mask applied");
  union sigval v = {.sival_int = 4242};
  sigqueue(getpid(), SIGUSR2, v);
  ZDTM_CHECK(g_usr2 == 1 && g_usr2_value == 4242, "USR2 SA_SIGINFO handler got value %d", g_usr2_value);
  raise(SIGHUP);
  ZDTM_CHECK(g_hup == 1 && g_hup_stack_addr >= (uintptr_t)g_alt &&
                 g_hup_stack_addr < (uintptr_t)g_alt + kAltSize,
             "HUP SA_ONSTACK handler ran on the alternate stack");
  raise(SIGTERM);
  struct sigaction now;
  sigaction(SIGTERM, NULL, &now);
  ZDTM_CHECK(g_term == 1 && now.sa_handler == SIG_DFL, "TERM SA_RESETHAND ran once and reset");
  v.sival_int = 777;
  sigqueue(getpid(), SIGRTMIN + 2, v);
  ZDTM_CHECK(g_rt == 1 && g_rt_value == 777, "RTMIN+2 handler got value %d", g_rt_value);
  raise(SIGPIPE);
  ZDTM_CHECK(true, "SIGPIPE still ignored (we are alive)");
  return zdtm_finish();
}
