// SPDX-License-Identifier: GPL-2.0-or-later
/* zdtm_tracer: attaches to a process with PTRACE_SEIZE and stays attached, so a case can check
 * that the engine refuses to checkpoint a process someone else is already tracing (and leaves
 * that tracer in place). Usage: zdtm_tracer PID READY_FILE. It creates READY_FILE once attached,
 * then passes every signal through to the tracee until the tracee exits; the harness ends it with
 * SIGKILL, which makes the kernel detach it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s PID READY_FILE\n", argv[0]);
    return 2;
  }
  pid_t pid = (pid_t)atoi(argv[1]);
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) {
    fprintf(stderr, "zdtm_tracer: PTRACE_SEIZE pid %d: %s\n", (int)pid, strerror(errno));
    return 1;
  }
  int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "zdtm_tracer: create %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  close(fd);
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, __WALL);
    if (r < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "zdtm_tracer: waitpid %d: %s\n", (int)pid, strerror(errno));
      return 1;
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) return 0;
    if (WIFSTOPPED(status)) {
      /* A signal-delivery stop carries the signal to inject; event stops (status>>16 != 0)
       * carry none. */
      int sig = (status >> 16) == 0 ? WSTOPSIG(status) : 0;
      ptrace(PTRACE_CONT, pid, 0, (void*)(long)sig);
    }
  }
}
