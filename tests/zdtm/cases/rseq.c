// SPDX-License-Identifier: GPL-2.0-or-later
/* rseq: glibc registers a restartable-sequences area for the thread at startup; after restore
 * it must still be registered with the kernel. Proof 1: registering it again with the same
 * arguments fails with EBUSY (not registered: it would succeed). Proof 2: a sentinel written into
 * cpu_id_start/cpu_id is overwritten with the real cpu by the kernel on the next return to user
 * space after a signal. The cpu it reports must agree with sched_getcpu(). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

#define RSEQ_SIG_X86 0x53053053

static struct rseq* area(void) { return (struct rseq*)((char*)__builtin_thread_pointer() + __rseq_offset); }

static void on_usr1(int sig) { (void)sig; }

/* Length glibc registered with: the re-registration probe gives EBUSY only for the exact one. */
static int registered_len(void) {
  int lens[] = {(int)__rseq_size, 32};
  for (int i = 0; i < 2; i++) {
    long r = syscall(SYS_rseq, area(), lens[i], 0, RSEQ_SIG_X86);
    if (r == -1 && errno == EBUSY) return lens[i];
    if (r == 0) { /* we just registered it: undo, that was not glibc's registration */
      syscall(SYS_rseq, area(), lens[i], 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG_X86);
    }
  }
  return -1;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(__rseq_size > 0, "glibc did not register rseq (GLIBC_TUNABLES?)");
  int len = registered_len();
  ZDTM_SETUP(len > 0, "cannot find glibc's rseq registration");
  ZDTM_SETUP((int)area()->cpu_id >= 0, "rseq cpu_id invalid before checkpoint");
  signal(SIGUSR1, on_usr1);
  zdtm_ready();
  zdtm_wait_go();
  errno = 0;
  long r = syscall(SYS_rseq, area(), len, 0, RSEQ_SIG_X86);
  ZDTM_CHECK(r == -1 && errno == EBUSY, "rseq area still registered (re-register: %ld errno %d)", r, errno);
  volatile struct rseq* a = area();
  a->cpu_id_start = 0xdeadbeef;
  a->cpu_id = 0xdeadbeef;
  raise(SIGUSR1);
  uint32_t start = a->cpu_id_start, id = a->cpu_id;
  long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  ZDTM_CHECK(id != 0xdeadbeef && (long)id < ncpu && start == id, "kernel rewrote cpu_id %u cpu_id_start %u",
             id, start);
  int cpu = sched_getcpu();
  ZDTM_CHECK(cpu >= 0 && cpu < ncpu, "sched_getcpu %d", cpu);
  return zdtm_finish();
}
