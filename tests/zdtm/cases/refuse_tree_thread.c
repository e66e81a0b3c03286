// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_tree_thread: a single-threaded parent whose child runs a second thread. A tree checkpoint
 * must refuse the whole tree before touching any process, naming the child; afterwards the child
 * and its thread keep working and the parent collects the child's status. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_common.h"

static void* worker(void* arg) {
  (void)arg;
  tree_child_wait_go();
  return (void*)42;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  pid_t c = fork();
  ZDTM_SETUP(c >= 0, "fork");
  if (c == 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) _exit(1);
    void* ret = NULL;
    _exit(pthread_join(t, &ret) == 0 && ret == (void*)42 ? 0 : 1);
  }
  char buf[4096];
  struct timespec ms = {0, 1000 * 1000};
  for (int i = 0; i < 5000; i++) {
    char st[64];
    snprintf(st, sizeof st, "/proc/%d/status", (int)c);
    if (zdtm_read_file(st, buf, sizeof buf) > 0 && strstr(buf, "Threads:\t2") != NULL) break;
    nanosleep(&ms, 0);
  }
  zdtm_ready();
  zdtm_wait_go();
  int s = -1;
  ZDTM_CHECK(waitpid(c, &s, 0) == c && WIFEXITED(s) && WEXITSTATUS(s) == 0, "threaded child finished (%#x)", s);
  return zdtm_finish();
}
