// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_mprotect: protections survive: a read-only region keeps its data and still faults on write,
 * a PROT_NONE guard page between two writable pages still faults on read, and an
 * mprotect-split mapping keeps its three parts. Faults are probed with a SIGSEGV handler that
 * siglongjmps back. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "zdtm.h"

static sigjmp_buf g_jump;
static void on_segv(int sig) { siglongjmp(g_jump, sig); }

/* True if reading (write=false) or writing addr faults. */
static bool faults(volatile unsigned char* addr, bool write) {
  if (sigsetjmp(g_jump, 1) != 0) return true;
  if (write)
    *addr = 1;
  else
    (void)*addr;
  return false;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const size_t page = 4096;
  struct sigaction sa = {0};
  sa.sa_handler = on_segv;
  ZDTM_SETUP(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction");
  unsigned char* ro = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char* g = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char* x = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ZDTM_SETUP(ro != MAP_FAILED && g != MAP_FAILED && x != MAP_FAILED, "mmap");
  zdtm_fill(ro, 4 * page, 51);
  zdtm_fill(g, page, 52);
  zdtm_fill(g + 2 * page, page, 53);
  memset(x, 0xc3, 2 * page); /* ret instructions */
  ZDTM_SETUP(mprotect(ro, 4 * page, PROT_READ) == 0, "mprotect ro");
  ZDTM_SETUP(mprotect(g + page, page, PROT_NONE) == 0, "mprotect guard");
  ZDTM_SETUP(mprotect(x, 2 * page, PROT_READ | PROT_EXEC) == 0, "mprotect exec");
  zdtm_ready();
  zdtm_wait_go();
  char perms[8];
  zdtm_map_perms(ro, perms);
  ZDTM_CHECK(strcmp(perms, "r--p") == 0, "read-only region perms %s", perms);
  ZDTM_CHECK(zdtm_verify(ro, 4 * page, 51) == (size_t)-1, "read-only region content");
  ZDTM_CHECK(faults(ro + page, true), "write to read-only region faults");
  zdtm_map_perms(g + page, perms);
  ZDTM_CHECK(strcmp(perms, "---p") == 0, "guard page perms %s", perms);
  ZDTM_CHECK(faults(g + page + 10, false), "read of guard page faults");
  ZDTM_CHECK(zdtm_verify(g, page, 52) == (size_t)-1 && zdtm_verify(g + 2 * page, page, 53) == (size_t)-1,
             "pages around the guard keep content");
  ZDTM_CHECK(!faults(g, true) && !faults(g + 2 * page, true), "pages around the guard writable");
  zdtm_map_perms(x, perms);
  ZDTM_CHECK(strcmp(perms, "r-xp") == 0, "exec region perms %s", perms);
  ((void (*)(void))x)();
  ZDTM_CHECK(true, "code in the exec region ran");
  return zdtm_finish();
}
