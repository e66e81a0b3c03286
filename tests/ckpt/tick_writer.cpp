// SPDX-License-Identifier: GPL-2.0-or-later
// tick_writer: the process of the CLI stand-in tests (cli_stand_ins.sh). Every 10 ms it writes
// the next number ("N\n", from 0) to its stdout and then to fd 251 (a pipe to another process,
// as CI runners leave one), forever. A restored copy continues the sequence, so where its
// numbers start says whether it continued exactly where the original was checkpointed.
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace {

void put(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // fd 251 gone (EPIPE with SIGPIPE ignored): keep counting on stdout
    s += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

int main() {
  char line[32];
  for (unsigned long n = 0;; n++) {
    int len = snprintf(line, sizeof line, "%lu\n", n);
    put(1, line, static_cast<size_t>(len));
    put(251, line, static_cast<size_t>(len));
    timespec ts{0, 10 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
}
