// SPDX-License-Identifier: GPL-2.0-or-later
/* caps: capability sets of a root process with some capabilities dropped: effective,
 * permitted and inheritable sets (capset), a reduced bounding set (PR_CAPBSET_DROP), an ambient
 * capability and securebits all survive, as /proc/self/status shows. */
#define _GNU_SOURCE
#include <linux/capability.h>
#include <linux/securebits.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

static const char* const kKeys[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  ZDTM_SETUP(prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT) == 0 && prctl(PR_CAPBSET_DROP, CAP_MKNOD) == 0,
             "PR_CAPBSET_DROP");
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  ZDTM_SETUP(syscall(SYS_capget, &hdr, data) == 0, "capget");
  /* Drop CAP_NET_RAW and CAP_SYS_TIME from effective and permitted, keep CAP_KILL inheritable,
   * and make CAP_CHOWN inheritable (ambient needs it in permitted and inheritable). */
  data[0].effective &= ~((1u << CAP_NET_RAW) | (1u << CAP_SYS_TIME) | (1u << CAP_LEASE));
  data[0].permitted &= ~((1u << CAP_NET_RAW) | (1u << CAP_SYS_TIME));
  data[0].inheritable = (1u << CAP_KILL) | (1u << CAP_CHOWN);
  ZDTM_SETUP(syscall(SYS_capset, &hdr, data) == 0, "capset");
  ZDTM_SETUP(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0) == 0, "ambient raise");
  ZDTM_SETUP(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP) == 0, "securebits");
  char before[5][64];
  for (int i = 0; i < 5; i++) zdtm_status_field(kKeys[i], before[i], sizeof before[i]);
  zdtm_ready();
  zdtm_wait_go();
  for (int i = 0; i < 5; i++) {
    char now[64];
    zdtm_status_field(kKeys[i], now, sizeof now);
    ZDTM_CHECK(strcmp(now, before[i]) == 0, "%s %s, before %s", kKeys[i], now, before[i]);
  }
  int bits = prctl(PR_GET_SECUREBITS);
  ZDTM_CHECK(bits == (SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP), "securebits %#x", bits);
  return zdtm_finish();
}
