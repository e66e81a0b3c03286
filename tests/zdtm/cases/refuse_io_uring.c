// SPDX-License-Identifier: GPL-2.0-or-later
/* refuse_io_uring: an io_uring instance (fd plus its shared ring mappings) cannot be
 * checkpointed; the engine must refuse and the ring keeps working: after go a NOP is submitted
 * and its completion reaped. Raw syscalls, no liburing. */
#define _GNU_SOURCE
#include <linux/io_uring.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  int fd = (int)syscall(SYS_io_uring_setup, 4, &p);
  ZDTM_SETUP(fd >= 0, "io_uring_setup");
  size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
  size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  unsigned char* sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  unsigned char* cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
  struct io_uring_sqe* sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  ZDTM_SETUP(sq != MAP_FAILED && cq != MAP_FAILED && sqes != MAP_FAILED, "mmap rings");
  zdtm_ready();
  zdtm_wait_go();
  uint32_t* sq_tail = (uint32_t*)(sq + p.sq_off.tail);
  uint32_t* sq_mask = (uint32_t*)(sq + p.sq_off.ring_mask);
  uint32_t* sq_array = (uint32_t*)(sq + p.sq_off.array);
  uint32_t tail = *sq_tail, idx = tail & *sq_mask;
  memset(&sqes[idx], 0, sizeof sqes[idx]);
  sqes[idx].opcode = IORING_OP_NOP;
  sqes[idx].user_data = 0x5eed;
  sq_array[idx] = idx;
  __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
  long r = syscall(SYS_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
  uint32_t* cq_head = (uint32_t*)(cq + p.cq_off.head);
  uint32_t* cq_tail = (uint32_t*)(cq + p.cq_off.tail);
  uint32_t* cq_mask = (uint32_t*)(cq + p.cq_off.ring_mask);
  struct io_uring_cqe* cqes = (struct io_uring_cqe*)(cq + p.cq_off.cqes);
  uint32_t head = *cq_head;
  bool got = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE) != head && cqes[head & *cq_mask].user_data == 0x5eed &&
             cqes[head & *cq_mask].res == 0;
  ZDTM_CHECK(r == 1 && got, "NOP submitted (%ld) and completed", r);
  return zdtm_finish();
}
