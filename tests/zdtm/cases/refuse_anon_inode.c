// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_anon_inode: one anon_inode fd kind per build (REFUSE_KIND: 1 eventfd, 2 epoll,
 * 3 signalfd, 4 timerfd, 5 pidfd). None of them can be checkpointed; the engine must refuse and
 * the fd keeps working afterwards, which the case proves with one operation per kind. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int fd = -1, p[2] = {-1, -1};
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  switch (REFUSE_KIND) {
    case 1: fd = eventfd(5, 0); break;
    case 2: {
      fd = epoll_create1(0);
      ZDTM_SETUP(pipe(p) == 0, "pipe");
      struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 77};
      ZDTM_SETUP(fd >= 0 && epoll_ctl(fd, EPOLL_CTL_ADD, p[0], &ev) == 0, "epoll_ctl");
      break;
    }
    case 3:
      sigprocmask(SIG_BLOCK, &usr1, NULL);
      fd = signalfd(-1, &usr1, 0);
      break;
    case 4: {
      fd = timerfd_create(CLOCK_MONOTONIC, 0);
      struct itimerspec its = {{0, 20 * 1000 * 1000}, {0, 20 * 1000 * 1000}};
      ZDTM_SETUP(fd >= 0 && timerfd_settime(fd, 0, &its, NULL) == 0, "timerfd_settime");
      break;
    }
    case 5: fd = (int)syscall(SYS_pidfd_open, getpid(), 0); break;
  }
  ZDTM_SETUP(fd >= 0, "create the fd (kind %d)", REFUSE_KIND);
  zdtm_ready();
  zdtm_wait_go();
  uint64_t v = 0;
  switch (REFUSE_KIND) {
    case 1: ZDTM_CHECK(read(fd, &v, 8) == 8 && v == 5, "eventfd counter %llu", (unsigned long long)v); break;
    case 2: {
      struct epoll_event ev;
      ZDTM_CHECK(write(p[1], "x", 1) == 1 && epoll_wait(fd, &ev, 1, 1000) == 1 && ev.data.u32 == 77,
                 "epoll reports the pipe");
      break;
    }
    case 3: {
      struct signalfd_siginfo si;
      raise(SIGUSR1);
      ZDTM_CHECK(read(fd, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR1, "signalfd delivers SIGUSR1");
      break;
    }
    case 4: ZDTM_CHECK(read(fd, &v, 8) == 8 && v >= 1, "timerfd expirations %llu", (unsigned long long)v); break;
    case 5: ZDTM_CHECK(syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) == 0, "pidfd still names us"); break;
  }
  return zdtm_finish();
}
