// SPDX-License-Identifier: GPL-2.0-or-later
/* tls_fs: thread-local storage through the fs base: __thread variables (initialized and zero)
 * keep their values, ARCH_GET_FS gives the same base, the TCB's self pointer at %fs:0 still
 * equals it, and pthread_self() is unchanged. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

static __thread unsigned char t_zero[4096];
static __thread uint64_t t_init = 0x1234567890abcdefull;
static __thread int t_array[100] = {1, 2, 3};

static uintptr_t fs_base(void) {
  unsigned long v = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &v);
  return v;
}

static uintptr_t fs_self(void) {
  uintptr_t v;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
  return v;
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  zdtm_fill(t_zero, sizeof t_zero, 231);
  t_init ^= 0xffff;
  for (int i = 0; i < 100; i++) t_array[i] = i * i - 7;
  uintptr_t base = fs_base();
  pthread_t self = pthread_self();
  zdtm_ready();
  zdtm_wait_go();
  ZDTM_CHECK(fs_base() == base, "ARCH_GET_FS %#lx, want %#lx", (unsigned long)fs_base(), (unsigned long)base);
  ZDTM_CHECK(fs_self() == base, "%%fs:0 self pointer %#lx", (unsigned long)fs_self());
  ZDTM_CHECK(pthread_equal(pthread_self(), self), "pthread_self unchanged");
  ZDTM_CHECK(zdtm_verify(t_zero, sizeof t_zero, 231) == (size_t)-1, "__thread buffer content");
  ZDTM_CHECK(t_init == (0x1234567890abcdefull ^ 0xffff), "__thread scalar %#llx", (unsigned long long)t_init);
  bool ok = true;
  for (int i = 0; i < 100; i++) ok &= t_array[i] == i * i - 7;
  ZDTM_CHECK(ok, "__thread array content");
  return zdtm_finish();
}
