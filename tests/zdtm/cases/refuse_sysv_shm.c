// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_sysv_shm: an attached System V shared memory segment is outside the engine's model;
 * it must refuse and the segment stays attached with its content. The segment is marked for
 * removal right after attaching, so it disappears with the process whatever happens. */
#define _GNU_SOURCE
#include <sys/ipc.h>
#include <sys/shm.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int id = shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0600);
  ZDTM_SETUP(id >= 0, "shmget");
  unsigned char* p = shmat(id, NULL, 0);
  ZDTM_SETUP(p != (void*)-1, "shmat");
  ZDTM_SETUP(shmctl(id, IPC_RMID, NULL) == 0, "IPC_RMID");
  zdtm_fill(p, 1 << 20, 701);
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(zdtm_verify(p, 1 << 20, 701) == (size_t)-1, "segment content");
  ZDTM_CHECK(shmdt(p) == 0, "detach");
  return zdtm_finish();
}
