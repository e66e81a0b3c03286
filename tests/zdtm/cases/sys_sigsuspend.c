// SPDX-License-Identifier: GPL-2.0-or-later
/* sys_sigsuspend: checkpointed inside sigsuspend(). While sigsuspend waits, the kernel has the
 * temporary mask installed and keeps the real one aside (saved_sigmask); the restore must bring
 * back the real mask, so that once sigsuspend returns the mask is {USR1, USR2} again, not the
 * temporary {USR2}. A 20 ms ITIMER_REAL wakes it so it can look for go. */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/time.h>

#include "zdtm.h"

static volatile sig_atomic_t g_alarms;
static void on_alarm(int sig) { (void)sig; g_alarms++; }

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  ZDTM_SETUP(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
  sigset_t real_mask, temp_mask;
  sigemptyset(&real_mask);
  sigaddset(&real_mask, SIGUSR1);
  sigaddset(&real_mask, SIGUSR2);
  sigemptyset(&temp_mask);
  sigaddset(&temp_mask, SIGUSR2);
  ZDTM_SETUP(sigprocmask(SIG_SETMASK, &real_mask, NULL) == 0, "sigprocmask");
  struct itimerval it = {{0, 20000}, {0, 20000}};
  ZDTM_SETUP(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
  zdtm_ready();
  int bad_mask = 0, bad_ret = 0;
  while (!zdtm_go() && !zdtm_waited_too_long()) {
    int r = sigsuspend(&temp_mask);
    bad_ret += r != -1;
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    bad_mask += !(sigismember(&now, SIGUSR1) && sigismember(&now, SIGUSR2));
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  ZDTM_CHECK(g_alarms > 0, "%d alarms woke sigsuspend", (int)g_alarms);
  ZDTM_CHECK(bad_ret == 0, "sigsuspend always returned -1/EINTR (%d odd returns)", bad_ret);
  ZDTM_CHECK(bad_mask == 0, "real mask back after every sigsuspend (%d times it was not)", bad_mask);
  return zdtm_finish();
}
