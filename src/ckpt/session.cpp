// SPDX-License-Identifier: GPL-2.0-or-later
// Sessions and process groups: which helper processes a restore needs so that the restored
// process gets back the session id and process group id it had (getsid/getpgrp), the way CRIU
// rebuilds them with helper tasks.
//
// The restored process lives in a fresh pid namespace. A session or group id is the pid of its
// leader, so it can only be recreated by a process *with that pid* calling setsid()/setpgid(),
// and it is inherited by children. When the image's session or group is led by another process
// (typically the shell that started the job), a placeholder with that pid (clone3 set_tid)
// recreates it and the restored process is cloned from inside it:
//
//   init (1) --clone--> session placeholder (pid = sid): setsid()
//                         --clone(CLONE_PARENT)--> group placeholder (pid = pgid): setpgid(0,0)
//                                                    --clone(CLONE_PARENT)--> restored process
//
// CLONE_PARENT makes every process of the chain a child of init, so init reaps the placeholders
// right away (they exit as soon as their child exists) and waits for the restored process
// exactly as before. A session or group outlives its leader as long as a member remains: the
// ids stay valid and their numbers reserved (the kernel keeps the struct pid), just as when a
// real shell exits before its job. The placeholders die with the namespace if the restore
// fails. The new session has no controlling terminal (see docs/engine.md).
#include "ckpt/kinds.hpp"

namespace osmo::ckpt {

Result<SessionPlan> plan_session(pid_t pid, pid_t sid, pid_t pgid) {
  SessionPlan p;
  if (pid <= 1) return make_error("internal: no session plan for pid {}", pid);
  if (sid == 0) {
    // The session leader was outside the process's pid namespace: it stays in the restorer's
    // session (invisible to it, getsid() = 0). Its group is still rebuilt there: led by itself,
    // or by a placeholder when the leader (a shell with job control, ctest, ...) was a process
    // of the namespace that is not in the image. Left in the restorer's group, its children
    // could not join their recorded group (EPERM from setpgid).
    if (pgid == pid) {
      p.target_setpgid = true;
    } else if (pgid != 0) {
      if (pgid == 1) return make_error("process group 1 cannot be rebuilt (pid 1 is the restore's init)");
      p.group_placeholder = pgid;
    }
    return p;
  }
  if (sid == pid) {
    // A session leader always leads its group too (setsid makes both; it cannot change group).
    p.target_setsid = true;
    return p;
  }
  if (sid == 1)
    p.init_setsid = true;  // pid 1 is our init: it becomes the leader itself
  else
    p.session_placeholder = sid;
  if (pgid == pid) {
    p.target_setpgid = true;
  } else if (pgid != sid && pgid != 0) {
    if (pgid == 1)
      return make_error(
          "process group 1 inside session {} cannot be rebuilt (pid 1 is the restore's init)", sid);
    p.group_placeholder = pgid;
  }
  return p;
}

}  // namespace osmo::ckpt
