// SPDX-License-Identifier: GPL-2.0-or-later
/* sys_read_pipe: checkpointed while blocked in read() on an empty pipe. A 20 ms ITIMER_REAL
 * handler installed with SA_RESTART interrupts the read over and over; the read must be
 * restarted each time, including the time the checkpoint interrupted it, and never fail with
 * EINTR. Once go exists, the handler writes one byte into the pipe and the read returns it. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "zdtm.h"

static int g_pipe[2];
static volatile sig_atomic_t g_alarms, g_written;

static void on_alarm(int sig) {
  (void)sig;
  g_alarms++;
  if (!g_written && (zdtm_go() || zdtm_waited_too_long())) {
    int saved = errno;
    if (write(g_pipe[1], "x", 1) == 1) g_written = 1;
    errno = saved;
  }
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(pipe(g_pipe) == 0, "pipe");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  ZDTM_SETUP(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
  struct itimerval it = {{0, 20000}, {0, 20000}};
  ZDTM_SETUP(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
  zdtm_ready();
  char c = 0;
  ssize_t n = read(g_pipe[0], &c, 1);
  int err = errno;
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  ZDTM_CHECK(n == 1 && c == 'x', "read returned %zd '%c' (errno %s)", n, c, n < 0 ? strerror(err) : "-");
  ZDTM_CHECK(g_alarms > 1, "read was interrupted and restarted %d times", (int)g_alarms);
  return zdtm_finish();
}
