// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_vmflags: madvise/mlock state kept per mapping (the VmFlags letters in smaps): hg (HUGEPAGE),
 * nh (NOHUGEPAGE), dc (DONTFORK), dd (DONTDUMP), wf (WIPEONFORK), sr (SEQUENTIAL), rr (RANDOM),
 * lo (mlock). Each region's full VmFlags string must be the same after restore. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "zdtm.h"

enum { kRegions = 8 };
static const int kAdvice[kRegions] = {MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTFORK, MADV_DONTDUMP,
                                      MADV_WIPEONFORK, MADV_SEQUENTIAL, MADV_RANDOM, -1};
static const char* const kFlag[kRegions] = {"hg", "nh", "dc", "dd", "wf", "sr", "rr", "lo"};

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  const size_t len = 4 << 20; /* 2 MiB aligned huge pages fit */
  static unsigned char* region[kRegions];
  static char before[kRegions][256];
  for (int i = 0; i < kRegions; i++) {
    /* A PROT_NONE gap between regions keeps the kernel from merging neighbours. */
    unsigned char* r = mmap(NULL, len + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ZDTM_SETUP(r != MAP_FAILED && mprotect(r + len, 4096, PROT_NONE) == 0, "mmap region %d", i);
    if (kAdvice[i] >= 0)
      ZDTM_SETUP(madvise(r, len, kAdvice[i]) == 0, "madvise %s", kFlag[i]);
    else
      ZDTM_SETUP(mlock(r, len) == 0, "mlock");
    zdtm_fill(r, 64 * 1024, 90 + (unsigned)i);
    region[i] = r;
    ZDTM_SETUP(zdtm_has_vmflag(r, kFlag[i]), "flag %s not set before checkpoint", kFlag[i]);
    zdtm_vmflags(r, before[i], sizeof before[i]);
  }
  zdtm_ready();
  zdtm_wait_go();
  for (int i = 0; i < kRegions; i++) {
    char after[256];
    zdtm_vmflags(region[i], after, sizeof after);
    ZDTM_CHECK(strcmp(after, before[i]) == 0, "%s region VmFlags '%s', before '%s'", kFlag[i],
               after, before[i]);
    ZDTM_CHECK(zdtm_verify(region[i], 64 * 1024, 90 + (unsigned)i) == (size_t)-1, "%s region content",
               kFlag[i]);
  }
  return zdtm_finish();
}
