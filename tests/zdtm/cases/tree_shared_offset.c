// SPDX-License-Identifier: GPL-2.0-or-later
/* tree_shared_offset: parent and child share one open file description (the child inherited the
 * fd), so they share its offset. After the restore the child appends "child" at the shared offset,
 * and the parent, once the child is done, must find the offset moved and append after it: the
 * file reads "parent1child parent2". A restore that gave each process its own open file would
 * leave the parent's offset behind and overwrite the child's bytes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_common.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int fd = open(zdtm_path("shared"), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ZDTM_SETUP(fd >= 0, "open");
  ZDTM_SETUP(write(fd, "parent1", 7) == 7, "write");
  pid_t c = fork();
  ZDTM_SETUP(c >= 0, "fork");
  if (c == 0) {
    tree_child_wait_go();
    _exit(write(fd, "child ", 6) == 6 ? 0 : 1);
  }
  zdtm_ready();
  zdtm_wait_go();
  int st = -1;
  ZDTM_CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child wrote (%#x)", st);
  ZDTM_CHECK(lseek(fd, 0, SEEK_CUR) == 13, "shared offset moved by the child to 13 (%ld)", (long)lseek(fd, 0, SEEK_CUR));
  ZDTM_CHECK(write(fd, "parent2", 7) == 7, "parent write");
  char buf[64] = "";
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  ZDTM_CHECK(n == 20 && memcmp(buf, "parent1child parent2", 20) == 0, "file reads '%s'", buf);
  return zdtm_finish();
}
