// SPDX-License-Identifier: GPL-2.0-or-later
/* sig_pending: signals pending while blocked survive: a thread-directed SIGUSR1 (raise), a
 * process-wide SIGHUP (kill), and realtime signals queued three times with sigqueue values,
 * which must come out in order with their values, si_code SI_QUEUE and our pid. Standard signals
 * do not queue: SIGUSR1 raised twice is pending once. */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const int rt1 = SIGRTMIN, rt2 = SIGRTMIN + 1;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, rt1);
  sigaddset(&set, rt2);
  ZDTM_SETUP(sigprocmask(SIG_BLOCK, &set, NULL) == 0, "sigprocmask");
  raise(SIGUSR1);
  raise(SIGUSR1);
  kill(getpid(), SIGHUP);
  for (int i = 0; i < 3; i++) {
    union sigval v = {.sival_int = 101 + i};
    ZDTM_SETUP(sigqueue(getpid(), rt1, v) == 0, "sigqueue");
  }
  union sigval v2 = {.sival_int = 201};
  ZDTM_SETUP(sigqueue(getpid(), rt2, v2) == 0, "sigqueue");
  pid_t me = getpid();
  /* Thread-private (SigPnd) and process-wide (ShdPnd) pending sets are separate queues. */
  char sigpnd[64], shdpnd[64], now_pnd[64], now_shd[64];
  zdtm_status_field("SigPnd", sigpnd, sizeof sigpnd);
  zdtm_status_field("ShdPnd", shdpnd, sizeof shdpnd);
  zdtm_ready();
  zdtm_wait_go();
  zdtm_status_field("SigPnd", now_pnd, sizeof now_pnd);
  zdtm_status_field("ShdPnd", now_shd, sizeof now_shd);
  ZDTM_CHECK(strcmp(sigpnd, now_pnd) == 0, "thread-private pending SigPnd %s, before %s", now_pnd, sigpnd);
  ZDTM_CHECK(strcmp(shdpnd, now_shd) == 0, "process-wide pending ShdPnd %s, before %s", now_shd, shdpnd);
  sigset_t pend;
  sigpending(&pend);
  ZDTM_CHECK(sigismember(&pend, SIGUSR1) && sigismember(&pend, SIGHUP) && sigismember(&pend, rt1) &&
                 sigismember(&pend, rt2) && !sigismember(&pend, SIGUSR2),
             "sigpending has USR1, HUP, RTMIN, RTMIN+1 and not USR2");
  struct timespec zero = {0, 0};
  siginfo_t si;
  sigset_t one;
  for (int i = 0; i < 3; i++) {
    sigemptyset(&one);
    sigaddset(&one, rt1);
    memset(&si, 0, sizeof si);
    int got = sigtimedwait(&one, &si, &zero);
    ZDTM_CHECK(got == rt1 && si.si_value.sival_int == 101 + i && si.si_code == SI_QUEUE && si.si_pid == me,
               "RTMIN #%d: sig %d value %d code %d pid %d", i, got, si.si_value.sival_int, si.si_code,
               (int)si.si_pid);
  }
  sigemptyset(&one);
  sigaddset(&one, rt1);
  ZDTM_CHECK(sigtimedwait(&one, &si, &zero) == -1, "exactly three RTMIN queued");
  sigemptyset(&one);
  sigaddset(&one, rt2);
  memset(&si, 0, sizeof si);
  ZDTM_CHECK(sigtimedwait(&one, &si, &zero) == rt2 && si.si_value.sival_int == 201, "RTMIN+1 value %d",
             si.si_value.sival_int);
  sigemptyset(&one);
  sigaddset(&one, SIGUSR1);
  memset(&si, 0, sizeof si);
  ZDTM_CHECK(sigtimedwait(&one, &si, &zero) == SIGUSR1 && si.si_pid == me, "USR1 (raise) pending, pid %d",
             (int)si.si_pid);
  ZDTM_CHECK(sigtimedwait(&one, &si, &zero) == -1, "USR1 was pending once");
  sigemptyset(&one);
  sigaddset(&one, SIGHUP);
  memset(&si, 0, sizeof si);
  ZDTM_CHECK(sigtimedwait(&one, &si, &zero) == SIGHUP && si.si_code == SI_USER && si.si_pid == me,
             "HUP (kill) pending, code %d", si.si_code);
  sigpending(&pend);
  ZDTM_CHECK(sigisemptyset(&pend), "nothing else pending");
  return zdtm_finish();
}
