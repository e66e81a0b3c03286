// SPDX-License-Identifier: GPL-2.0-or-later
/* zdtm.c: implementation of the case-side protocol (see zdtm.h). Everything here is
 * deliberately plain: fixed buffers filled in zdtm_init(), write(2) to fd 1, access(2) for the go
 * file, so that the library itself adds no state (fds, heap, threads) to what a case tests. */
#define _GNU_SOURCE
#include "zdtm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char g_dir[512];
static char g_go[600];
static char g_path[1200];
static const char* g_name = "?";
static int g_checks;
static int g_failures;
static double g_ready_at;

enum { kWaitLimitSeconds = 100 };

bool zdtm_write_all(int fd, const void* buf, size_t len) {
  const char* p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

static void vline(const char* prefix, const char* fmt, va_list ap) {
  char buf[2048];
  int n = snprintf(buf, sizeof buf, "%s", prefix);
  int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  if (m < 0) m = 0;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  zdtm_write_all(1, buf, len);
}

static void line(const char* prefix, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char* prefix, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline(prefix, fmt, ap);
  va_end(ap);
}

void zdtm_init(int argc, char** argv, const char* name) {
  g_name = name;
  if (argc < 2 || strlen(argv[1]) >= sizeof g_dir - 16) {
    dprintf(2, "usage: %s WORKDIR\n", argc > 0 ? argv[0] : name);
    exit(2);
  }
  snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
  snprintf(g_go, sizeof g_go, "%s/go", g_dir);
  g_ready_at = zdtm_now(CLOCK_REALTIME); /* the wait bound counts from here until ready */
  line("", "START %s pid %d", name, (int)getpid());
}

const char* zdtm_path(const char* file) {
  snprintf(g_path, sizeof g_path, "%s/%s", g_dir, file);
  return g_path;
}

void zdtm_ready(void) {
  /* Written to a temporary name and renamed, so the harness never sees a half-made marker. */
  char tmp[600], ready[600];
  snprintf(tmp, sizeof tmp, "%s/ready.tmp", g_dir);
  snprintf(ready, sizeof ready, "%s/ready", g_dir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) zdtm_setup_fail("create %s", tmp);
  /* snprintf+write, not dprintf: glibc's dprintf mallocs a stdio buffer, and the library must
   * not create heap state the cases did not ask for. */
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  zdtm_write_all(fd, pid, (size_t)n);
  close(fd);
  if (rename(tmp, ready) != 0) zdtm_setup_fail("rename %s -> %s", tmp, ready);
  g_ready_at = zdtm_now(CLOCK_REALTIME);
  line("", "READY");
}

const char* zdtm_go_path(void) { return g_go; }

bool zdtm_go(void) { return access(g_go, F_OK) == 0; }

bool zdtm_waited_too_long(void) {
  return zdtm_now(CLOCK_REALTIME) - g_ready_at > kWaitLimitSeconds;
}

void zdtm_wait_go(void) {
  const struct timespec step = {0, 10 * 1000 * 1000};
  while (!zdtm_go()) {
    if (zdtm_waited_too_long()) {
      line("", "ABANDONED: no %s after %d s", g_go, kWaitLimitSeconds);
      exit(3);
    }
    nanosleep(&step, NULL);
  }
}

void zdtm_check(bool ok, const char* file, int lineno, const char* fmt, ...) {
  char prefix[256];
  g_checks++;
  if (!ok) g_failures++;
  snprintf(prefix, sizeof prefix, "%s: %s:%d: ", ok ? "PASS" : "FAIL", file, lineno);
  va_list ap;
  va_start(ap, fmt);
  vline(prefix, fmt, ap);
  va_end(ap);
}

void zdtm_setup_fail(const char* fmt, ...) {
  int saved = errno;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  line("", "SETUP-FAIL: %s: %s", msg, strerror(saved));
  exit(2);
}

void zdtm_info(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline("INFO: ", fmt, ap);
  va_end(ap);
}

int zdtm_finish(void) {
  bool ok = g_failures == 0 && g_checks > 0;
  line("", "RESULT %s %s (%d checks, %d failed)", ok ? "PASS" : "FAIL", g_name, g_checks,
       g_failures);
  return ok ? 0 : 1;
}

double zdtm_now(int clock_id) {
  struct timespec ts;
  clock_gettime(clock_id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void zdtm_fill(void* p, size_t len, unsigned seed) {
  unsigned char* b = p;
  for (size_t i = 0; i < len; i++) b[i] = zdtm_pattern(i, seed);
}

size_t zdtm_verify(const void* p, size_t len, unsigned seed) {
  const unsigned char* b = p;
  for (size_t i = 0; i < len; i++)
    if (b[i] != zdtm_pattern(i, seed)) return i;
  return (size_t)-1;
}
