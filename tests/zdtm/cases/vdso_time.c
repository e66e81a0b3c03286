// SPDX-License-Identifier: GPL-2.0-or-later
/* vdso_time: the vDSO still works after restore and agrees with the kernel: clock_gettime
 * (REALTIME, MONOTONIC, BOOTTIME) and gettimeofday through glibc (which calls the vDSO) match
 * the raw syscalls, which inside the restored time namespace requires the vDSO data page to be
 * the namespace's; __vdso_getcpu (looked up in the vDSO's ELF symbol table) gives a valid cpu;
 * and the vDSO is still mapped where AT_SYSINFO_EHDR says, since glibc cached its entry points. */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

/* Finds a symbol in the vDSO image mapped at base (its own dynamic symbol table). */
static void* vdso_sym(uintptr_t base, const char* name) {
  const ElfW(Ehdr)* eh = (const ElfW(Ehdr)*)base;
  const ElfW(Phdr)* ph = (const ElfW(Phdr)*)(base + eh->e_phoff);
  uintptr_t load = 0;
  const ElfW(Dyn)* dyn = NULL;
  bool have_load = false;
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type == PT_LOAD && !have_load) {
      load = base + ph[i].p_offset - ph[i].p_vaddr;
      have_load = true;
    } else if (ph[i].p_type == PT_DYNAMIC) {
      dyn = (const ElfW(Dyn)*)(base + ph[i].p_offset);
    }
  }
  if (!dyn || !have_load) return NULL;
  const ElfW(Sym)* symtab = NULL;
  const char* strtab = NULL;
  const uint32_t* hash = NULL;
  for (; dyn->d_tag != DT_NULL; dyn++) {
    if (dyn->d_tag == DT_SYMTAB) symtab = (const ElfW(Sym)*)(load + dyn->d_un.d_ptr);
    if (dyn->d_tag == DT_STRTAB) strtab = (const char*)(load + dyn->d_un.d_ptr);
    if (dyn->d_tag == DT_HASH) hash = (const uint32_t*)(load + dyn->d_un.d_ptr);
  }
  if (!symtab || !strtab || !hash) return NULL;
  for (uint32_t i = 0; i < hash[1]; i++)
    if (symtab[i].st_name && strcmp(strtab + symtab[i].st_name, name) == 0 && symtab[i].st_value)
      return (void*)(load + symtab[i].st_value);
  return NULL;
}

static double ts_sec(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

static void compare_clock(clockid_t id, const char* name) {
  struct timespec v, s;
  clock_gettime(id, &v);
  syscall(SYS_clock_gettime, id, &s);
  double d = ts_sec(s) - ts_sec(v);
  ZDTM_CHECK(d >= 0 && d < 0.5, "%s: vDSO %.6f vs syscall %.6f", name, ts_sec(v), ts_sec(s));
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  uintptr_t base = getauxval(AT_SYSINFO_EHDR);
  ZDTM_SETUP(base != 0, "no AT_SYSINFO_EHDR");
  typedef long (*getcpu_fn)(unsigned*, unsigned*, void*);
  getcpu_fn getcpu = (getcpu_fn)vdso_sym(base, "__vdso_getcpu");
  ZDTM_SETUP(getcpu != NULL, "no __vdso_getcpu in the vDSO");
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t); /* warm the path before the checkpoint */
  zdtm_ready();
  zdtm_wait_go();
  char perms[8];
  zdtm_map_perms((void*)base, perms);
  ZDTM_CHECK(strcmp(perms, "r-xp") == 0, "vDSO still mapped at AT_SYSINFO_EHDR %#lx (perms '%s')",
             (unsigned long)base, perms);
  static char maps[1 << 16];
  zdtm_read_file("/proc/self/maps", maps, sizeof maps);
  char want[64];
  snprintf(want, sizeof want, "%lx-", (unsigned long)base);
  char* line = strstr(maps, want);
  ZDTM_CHECK(line != NULL && line == strstr(maps, want) && strstr(line, "[vdso]") != NULL &&
                 strstr(line, "[vdso]") < strchr(line, '\n'),
             "the mapping at AT_SYSINFO_EHDR is [vdso]");
  compare_clock(CLOCK_REALTIME, "CLOCK_REALTIME");
  compare_clock(CLOCK_MONOTONIC, "CLOCK_MONOTONIC");
  compare_clock(CLOCK_BOOTTIME, "CLOCK_BOOTTIME");
  compare_clock(CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE");
  struct timeval tv, stv;
  gettimeofday(&tv, NULL);
  syscall(SYS_gettimeofday, &stv, NULL);
  double d = ((double)stv.tv_sec + (double)stv.tv_usec / 1e6) - ((double)tv.tv_sec + (double)tv.tv_usec / 1e6);
  ZDTM_CHECK(d > -0.001 && d < 0.5, "gettimeofday vDSO vs syscall differ by %.6f s", d);
  /* time() reads the coarse clock, which lags the precise one by up to a tick: just after a
   * second turns over it may still name the second before gettimeofday's. */
  time_t tt = time(NULL);
  ZDTM_CHECK(tt >= tv.tv_sec - 1 && tt <= tv.tv_sec + 2, "time() %ld agrees with gettimeofday %ld",
             (long)tt, (long)tv.tv_sec);
  unsigned cpu = 99999, node = 99999;
  long r = getcpu(&cpu, &node, NULL);
  long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  ZDTM_CHECK(r == 0 && cpu < (unsigned)ncpu, "__vdso_getcpu -> %ld cpu %u (of %ld)", r, cpu, ncpu);
  unsigned scpu = 99999;
  syscall(SYS_getcpu, &scpu, NULL, NULL);
  ZDTM_CHECK(scpu < (unsigned)ncpu, "getcpu syscall cpu %u", scpu);
  return zdtm_finish();
}
