// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_thread: a process with a second thread is outside what the engine supports; checkpoint
 * must refuse before touching it. Afterwards both threads keep working: when go appears, the
 * second thread sees it, finishes, and is joined. */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>

#include "zdtm.h"

static volatile int g_seen_go;
static void* worker(void* arg) {
  (void)arg;
  zdtm_wait_go();
  g_seen_go = 1;
  return (void*)42;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  pthread_t t;
  ZDTM_SETUP(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create");
  zdtm_ready();
  zdtm_wait_go();
  void* ret = NULL;
  ZDTM_CHECK(pthread_join(t, &ret) == 0 && ret == (void*)42 && g_seen_go, "second thread finished normally");
  return zdtm_finish();
}
