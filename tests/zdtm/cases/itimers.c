// SPDX-License-Identifier: GPL-2.0-or-later
/* itimers: interval timers survive with about the right remaining time and still fire:
 * ITIMER_REAL armed for 3 s (its remaining time after restore may not exceed what it was, and
 * may not have lost more than the wall-clock time that passed, plus slack), ITIMER_VIRTUAL
 * and ITIMER_PROF armed for 0.2/0.3 s of CPU time (the process sleeps, so they barely move;
 * after go it spins until both fire). */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "zdtm.h"

static volatile sig_atomic_t g_real, g_virt, g_prof;
static void on_sig(int sig) {
  if (sig == SIGALRM) g_real++;
  if (sig == SIGVTALRM) g_virt++;
  if (sig == SIGPROF) g_prof++;
}

/* Setting a CPU-time itimer rounds its value up by one scheduler tick (set_cpu_itimer adds
 * TICK_NSEC), so a restore that sets the exact dumped value reads back up to a tick more. */
static const double kTick = 0.0105;

static double tv_sec(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sig;
  sa.sa_flags = SA_RESTART;
  ZDTM_SETUP(sigaction(SIGALRM, &sa, NULL) == 0 && sigaction(SIGVTALRM, &sa, NULL) == 0 &&
                 sigaction(SIGPROF, &sa, NULL) == 0,
             "sigaction");
  struct itimerval real = {{0, 0}, {3, 0}}, virt = {{0, 0}, {0, 200000}}, prof = {{0, 0}, {0, 300000}};
  ZDTM_SETUP(setitimer(ITIMER_REAL, &real, NULL) == 0 && setitimer(ITIMER_VIRTUAL, &virt, NULL) == 0 &&
                 setitimer(ITIMER_PROF, &prof, NULL) == 0,
             "setitimer");
  struct itimerval r1, v1, p1;
  getitimer(ITIMER_REAL, &r1);
  getitimer(ITIMER_VIRTUAL, &v1);
  getitimer(ITIMER_PROF, &p1);
  double t1 = zdtm_now(CLOCK_REALTIME);
  zdtm_ready();
  zdtm_wait_go();
  struct itimerval r2, v2, p2;
  getitimer(ITIMER_REAL, &r2);
  getitimer(ITIMER_VIRTUAL, &v2);
  getitimer(ITIMER_PROF, &p2);
  double passed = zdtm_now(CLOCK_REALTIME) - t1;
  double rem1 = tv_sec(r1.it_value), rem2 = tv_sec(r2.it_value);
  if (g_real == 0) {
    ZDTM_CHECK(rem2 > 0 && rem2 <= rem1 && rem2 >= rem1 - passed - 0.5,
               "ITIMER_REAL remaining %.3f s, was %.3f s, %.3f s of wall time passed", rem2, rem1, passed);
  } else {
    ZDTM_CHECK(passed >= rem1 - 0.05, "ITIMER_REAL fired after %.3f s (was due in %.3f s)", passed, rem1);
  }
  ZDTM_CHECK(tv_sec(v2.it_value) > 0 && tv_sec(v2.it_value) <= tv_sec(v1.it_value) + kTick &&
                 tv_sec(v2.it_value) >= tv_sec(v1.it_value) - 0.1,
             "ITIMER_VIRTUAL remaining %.3f s, was %.3f s", tv_sec(v2.it_value), tv_sec(v1.it_value));
  ZDTM_CHECK(tv_sec(p2.it_value) > 0 && tv_sec(p2.it_value) <= tv_sec(p1.it_value) + kTick &&
                 tv_sec(p2.it_value) >= tv_sec(p1.it_value) - 0.1,
             "ITIMER_PROF remaining %.3f s, was %.3f s", tv_sec(p2.it_value), tv_sec(p1.it_value));
  /* Let them all fire: spin for CPU time (bounded by the wall clock), sleep for the real one. */
  double until = zdtm_now(CLOCK_REALTIME) + 10;
  volatile unsigned long spin = 0;
  while ((!g_virt || !g_prof) && zdtm_now(CLOCK_REALTIME) < until) spin++;
  const struct timespec step = {0, 10 * 1000 * 1000};
  while (!g_real && zdtm_now(CLOCK_REALTIME) < until) nanosleep(&step, NULL);
  ZDTM_CHECK(g_virt == 1, "ITIMER_VIRTUAL fired (%d)", (int)g_virt);
  ZDTM_CHECK(g_prof == 1, "ITIMER_PROF fired (%d)", (int)g_prof);
  ZDTM_CHECK(g_real == 1, "ITIMER_REAL fired (%d)", (int)g_real);
  return zdtm_finish();
}
