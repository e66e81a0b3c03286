// SPDX-License-Identifier: GPL-2.0-or-later
/* caps_nonroot: a process that switched to non-root uids while keeping a few capabilities
 * (PR_SET_KEEPCAPS, then capset and an ambient raise) still holds exactly those after restore:
 * the engine's uid change must neither clear them (as a plain root -> non-root setresuid does)
 * nor leave the restorer's full set behind. All five sets, securebits and the uids are compared
 * with their values before the checkpoint. */
#define _GNU_SOURCE
#include <linux/capability.h>
#include <linux/securebits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

static const char* const kKeys[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Uid"};
enum { kNumKeys = sizeof kKeys / sizeof kKeys[0] };

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(prctl(PR_SET_KEEPCAPS, 1) == 0, "PR_SET_KEEPCAPS");
  ZDTM_SETUP(setresuid(4001, 4001, 4001) == 0, "setresuid");
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  const unsigned keep = (1u << CAP_NET_BIND_SERVICE) | (1u << CAP_KILL);
  data[0].permitted = keep;
  data[0].effective = keep;
  data[0].inheritable = 1u << CAP_NET_BIND_SERVICE;
  ZDTM_SETUP(syscall(SYS_capset, &hdr, data) == 0, "capset");
  ZDTM_SETUP(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) == 0,
             "ambient raise");
  int bits_before = prctl(PR_GET_SECUREBITS);
  ZDTM_SETUP(bits_before == SECBIT_KEEP_CAPS, "securebits %#x", bits_before);
  char before[kNumKeys][64];
  for (int i = 0; i < kNumKeys; i++) zdtm_status_field(kKeys[i], before[i], sizeof before[i]);
  zdtm_ready();
  zdtm_wait_go();
  for (int i = 0; i < kNumKeys; i++) {
    char now[64];
    zdtm_status_field(kKeys[i], now, sizeof now);
    ZDTM_CHECK(strcmp(now, before[i]) == 0, "%s %s, before %s", kKeys[i], now, before[i]);
  }
  int bits = prctl(PR_GET_SECUREBITS);
  ZDTM_CHECK(bits == bits_before, "securebits %#x, before %#x", bits, bits_before);
  /* CAP_KILL is effective: signalling root's pid 1 of whatever namespace we are in is allowed
   * (signal 0 only checks). Without it, a uid-4001 process would get EPERM. */
  ZDTM_CHECK(kill(1, 0) == 0, "CAP_KILL still effective (kill(1, 0))");
  return zdtm_finish();
}
