// SPDX-License-Identifier: GPL-2.0-or-later
/* posix_timers: a POSIX timer (timer_create, CLOCK_MONOTONIC, SIGEV_SIGNAL with a value). The
 * engine refuses these (docs/engine.md); the timer must be left working: timer_gettime on the
 * same id gives its interval and it keeps delivering its signal with its sigev value and id.
 * (Should the engine learn to carry them, this becomes a restore case: the checks are the same.) */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <time.h>

#include "zdtm.h"

static volatile sig_atomic_t g_fires;
static volatile int g_value, g_timerid;
static void on_timer(int sig, siginfo_t* si, void* uc) {
  (void)sig;
  (void)uc;
  g_value = si->si_value.sival_int;
  g_timerid = si->si_timerid;
  g_fires++;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  ZDTM_SETUP(sigaction(SIGRTMIN + 3, &sa, NULL) == 0, "sigaction");
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGRTMIN + 3;
  sev.sigev_value.sival_int = 9191;
  timer_t t;
  ZDTM_SETUP(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0, "timer_create");
  struct itimerspec its = {{0, 40 * 1000 * 1000}, {0, 40 * 1000 * 1000}};
  ZDTM_SETUP(timer_settime(t, 0, &its, NULL) == 0, "timer_settime");
  zdtm_ready();
  zdtm_wait_go();
  struct itimerspec now;
  ZDTM_CHECK(timer_gettime(t, &now) == 0 && now.it_interval.tv_nsec == 40 * 1000 * 1000,
             "timer_gettime on the same id, interval %ld ns", now.it_interval.tv_nsec);
  int at_go = g_fires;
  const struct timespec step = {0, 10 * 1000 * 1000};
  double until = zdtm_now(CLOCK_REALTIME) + 5;
  while (g_fires < at_go + 3 && zdtm_now(CLOCK_REALTIME) < until) nanosleep(&step, NULL);
  ZDTM_CHECK(g_fires >= at_go + 3, "timer fires after restore (%d -> %d)", at_go, (int)g_fires);
  ZDTM_CHECK(g_value == 9191 && g_timerid == (int)(long)t, "signal carries value %d and timer id %d", g_value,
             g_timerid);
  timer_delete(t);
  return zdtm_finish();
}
