// SPDX-License-Identifier: GPL-2.0-or-later
// Running jobs without root: a user namespace owned by the daemon's own user, in which the job's
// init has the capabilities it needs for its PID and mount namespaces and its own /proc, while
// the job itself stays the same unprivileged user on the node (docs/run.md, "Without root").
// The kernel lets an unprivileged process map exactly one id, its own, into a namespace it just
// created, and only after giving up setgroups(2) there (user_namespaces(7)).
#pragma once

#include <sys/types.h>


namespace osmo::platform {

// Whether jobs on this node run in a user namespace of their own: the daemon is not root.
bool jobs_need_user_namespace();

// In a process that has just entered a new user namespace (clone or unshare CLONE_NEWUSER):
// maps `uid` and `gid` (its ids outside) to themselves inside, so that the process and its
// children see and keep their own ids, and denies setgroups there, as the kernel requires for an
// unprivileged gid map. Returns 0 or the errno of the step that failed: it runs in the child of a
// fork-like clone of a process that may have threads, where nothing may allocate (a lock held by
// another thread at the clone stays held forever in the child).
int map_own_ids(uid_t uid, gid_t gid);

}  // namespace osmo::platform
