// SPDX-License-Identifier: GPL-2.0-or-later
/* robust_list: the robust futex list head registered with set_robust_list survives
 * (get_robust_list returns the same head and length after restore). */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtm.h"

static struct robust_list_head g_head;

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  g_head.list.next = &g_head.list; /* an empty list points to itself */
  g_head.futex_offset = 16;
  g_head.list_op_pending = NULL;
  ZDTM_SETUP(syscall(SYS_set_robust_list, &g_head, sizeof g_head) == 0, "set_robust_list");
  zdtm_ready();
  zdtm_wait_go();
  struct robust_list_head* head = NULL;
  size_t len = 0;
  long r = syscall(SYS_get_robust_list, 0, &head, &len);
  ZDTM_CHECK(r == 0 && head == &g_head && len == sizeof g_head, "get_robust_list -> %p len %zu, want %p len %zu",
             (void*)head, len, (void*)&g_head, sizeof g_head);
  ZDTM_CHECK(g_head.futex_offset == 16 && g_head.list.next == &g_head.list, "list head content");
  return zdtm_finish();
}
