// SPDX-License-Identifier: GPL-2.0-or-later
// clone3(2), which glibc does not wrap: init is created with new pid and mount namespaces, and
// every process of the chain with a chosen pid (set_tid). The child continues on the caller's
// stack, as with fork(); only the calling thread exists in it.
#pragma once

#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace osmo::ckpt::restorer {

inline long raw_clone3(clone_args* a) { return ::syscall(SYS_clone3, a, sizeof(*a)); }

}  // namespace osmo::ckpt::restorer
