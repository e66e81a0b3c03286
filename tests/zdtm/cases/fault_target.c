// SPDX-License-Identifier: GPL-2.0-or-later
/* fault_target: several kinds of state at once, checked for being exactly as they were; the
 * target of the fault-injection tests (run_fault.sh), where a dump that fails half-way must
 * leave the process untouched (the engine injects syscalls such as brk and rt_sigaction into
 * the target while dumping, and maps code into it), and also an ordinary restore case.
 * Checked: memory pattern, brk, every signal disposition, the blocked mask, the thread-private
 * and process-wide pending sets, the set of open fds and a file offset, and the whole
 * /proc/self/maps layout (no mapping left behind). Only state the engine restores today is used
 * (pipes have their own case), so the restore.* fault tests can finish with a good restore. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zdtm.h"

static unsigned char g_mem[1 << 20];
static char g_maps_before[1 << 16], g_maps_after[1 << 16];
static struct sigaction g_act[65];
static void on_usr2(int sig) { (void)sig; }

/* Maps text without the device:inode columns (same rule as maps_identical). */
static void maps(char* out, size_t size) {
  static char raw[1 << 16];
  zdtm_read_file("/proc/self/maps", raw, sizeof raw);
  size_t used = 0;
  out[0] = '\0';
  for (char* line = strtok(raw, "\n"); line; line = strtok(NULL, "\n")) {
    char range[64], perms[8], off[32], path[512] = "";
    if (sscanf(line, "%63s %7s %31s %*s %*s %511[^\n]", range, perms, off, path) < 3) continue;
    if (strcmp(path, "[stack]") == 0) memmove(range, strchr(range, '-'), strlen(strchr(range, '-')) + 1);
    used += (size_t)snprintf(out + used, size - used, "%s %s %s %s\n", range, perms, off, path);
    if (used >= size) break;
  }
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  zdtm_fill(g_mem, sizeof g_mem, 1001);
  signal(SIGUSR2, on_usr2);
  signal(SIGPIPE, SIG_IGN);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGHUP);
  sigaddset(&block, SIGRTMIN + 1);
  sigprocmask(SIG_BLOCK, &block, NULL);
  raise(SIGUSR1);
  kill(getpid(), SIGHUP);
  union sigval v = {.sival_int = 5};
  sigqueue(getpid(), SIGRTMIN + 1, v);
  int f = open(zdtm_path("file"), O_RDWR | O_CREAT | O_TRUNC, 0644);
  ZDTM_SETUP(f >= 0 && write(f, "0123456789", 10) == 10 && lseek(f, 4, SEEK_SET) == 4, "file");
  void* brk0 = sbrk(0);
  for (int s = 1; s < 65; s++) sigaction(s, NULL, &g_act[s]);
  char pnd[64], shd[64], blk[64];
  zdtm_status_field("SigPnd", pnd, sizeof pnd);
  zdtm_status_field("ShdPnd", shd, sizeof shd);
  zdtm_status_field("SigBlk", blk, sizeof blk);
  static bool fd_open[256];
  for (int fd = 0; fd < 256; fd++) fd_open[fd] = fcntl(fd, F_GETFD) != -1;
  maps(g_maps_before, sizeof g_maps_before);
  maps(g_maps_before, sizeof g_maps_before);
  zdtm_ready();
  zdtm_wait_go();
  maps(g_maps_after, sizeof g_maps_after);
  ZDTM_CHECK(strcmp(g_maps_before, g_maps_after) == 0, "/proc/self/maps layout unchanged");
  if (strcmp(g_maps_before, g_maps_after) != 0) zdtm_info("before:\n%s\nafter:\n%s", g_maps_before, g_maps_after);
  ZDTM_CHECK(zdtm_verify(g_mem, sizeof g_mem, 1001) == (size_t)-1, "memory pattern");
  ZDTM_CHECK(sbrk(0) == brk0, "brk %p, want %p", sbrk(0), brk0);
  int bad = 0;
  for (int s = 1; s < 65; s++) {
    struct sigaction now;
    sigaction(s, NULL, &now);
    bad += now.sa_handler != g_act[s].sa_handler || now.sa_flags != g_act[s].sa_flags;
  }
  ZDTM_CHECK(bad == 0, "signal dispositions (%d differ)", bad);
  char pnd2[64], shd2[64], blk2[64];
  zdtm_status_field("SigPnd", pnd2, sizeof pnd2);
  zdtm_status_field("ShdPnd", shd2, sizeof shd2);
  zdtm_status_field("SigBlk", blk2, sizeof blk2);
  ZDTM_CHECK(strcmp(pnd, pnd2) == 0 && strcmp(shd, shd2) == 0, "pending SigPnd %s ShdPnd %s, before %s %s", pnd2,
             shd2, pnd, shd);
  ZDTM_CHECK(strcmp(blk, blk2) == 0, "blocked %s, before %s", blk2, blk);
  int fd_diff = 0;
  for (int fd = 0; fd < 256; fd++) fd_diff += fd_open[fd] != (fcntl(fd, F_GETFD) != -1);
  ZDTM_CHECK(fd_diff == 0, "the same fds are open (%d differ)", fd_diff);
  ZDTM_CHECK(lseek(f, 0, SEEK_CUR) == 4, "file offset");
  return zdtm_finish();
}
