// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_inotify: an inotify instance with a watch cannot be checkpointed; the engine must
 * refuse and the watch keeps reporting: creating a file in the watched directory after go
 * produces an IN_CREATE event with its name. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  static char dir[PATH_MAX];
  strncpy(dir, zdtm_path("watched"), sizeof dir - 1);
  ZDTM_SETUP(mkdir(dir, 0755) == 0, "mkdir");
  int in = inotify_init1(IN_NONBLOCK);
  ZDTM_SETUP(in >= 0 && inotify_add_watch(in, dir, IN_CREATE) >= 0, "inotify");
  zdtm_ready();
  zdtm_wait_go();
  int f = open(zdtm_path("watched/new-file"), O_WRONLY | O_CREAT, 0644);
  if (f >= 0) close(f);
  _Alignas(struct inotify_event) char buf[4096];
  ssize_t n = read(in, buf, sizeof buf);
  struct inotify_event* ev = (struct inotify_event*)buf;
  ZDTM_CHECK(n > 0 && (ev->mask & IN_CREATE) && strcmp(ev->name, "new-file") == 0, "IN_CREATE event for new-file");
  return zdtm_finish();
}
