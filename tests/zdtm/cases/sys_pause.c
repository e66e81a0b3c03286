// SPDX-License-Identifier: GPL-2.0-or-later
/* sys_pause: checkpointed inside pause(), woken by a periodic 30 ms ITIMER_REAL. After restore
 * pause() still returns on each alarm, the timer keeps firing, and the handler keeps counting. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "zdtm.h"

static volatile sig_atomic_t g_alarms;
static void on_alarm(int sig) { (void)sig; g_alarms++; }

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  ZDTM_SETUP(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
  struct itimerval it = {{0, 30000}, {0, 30000}};
  ZDTM_SETUP(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
  zdtm_ready();
  int odd = 0, wakeups = 0;
  while (!zdtm_go() && !zdtm_waited_too_long()) {
    int r = pause();
    odd += !(r == -1 && errno == EINTR);
    wakeups++;
  }
  int at_go = g_alarms;
  for (int i = 0; i < 3; i++) pause();
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  ZDTM_CHECK(odd == 0, "pause always returned -1/EINTR (%d odd)", odd);
  ZDTM_CHECK(g_alarms >= at_go + 3, "timer still fires after go (%d -> %d)", at_go, (int)g_alarms);
  ZDTM_CHECK(wakeups > 0, "%d wakeups", wakeups);
  return zdtm_finish();
}
