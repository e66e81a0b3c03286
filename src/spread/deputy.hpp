// SPDX-License-Identifier: GPL-2.0-or-later
// The deputy: what a job's process becomes when the program it exec'd runs on another node. It is
// the same process (the supervisor redirected its exec, redirect.hpp), so it keeps the pid, the
// parent, the process group and session, and every fd; it asks the local daemon to start the
// program on the chosen node as a sub-job of the job (run.start with "node", "parent",
// "exec_path": the program's argv, environment, cwd, umask and limits are this process's, which
// are the caller's, and the daemon takes the credentials from the kernel), then is that
// sub-job's anchor (run/anchor.hpp): stdin, stdout and stderr relayed through fds 0-2, every
// catchable signal forwarded, and at the end it exits with the program's status, or dies of the
// signal that killed it. A sub-job whose node dies (or whose stream breaks) ends the deputy as if
// SIGKILL had killed the program. If the sub-job cannot be started at all, the deputy execs the
// program here instead (the exec the caller asked for, through the filter's bypass).
//
// `osmo __spread-deputy --socket S --node N --parent JOB --path FILE --cookie C -- ARGV...`
// (hidden; only the supervisor starts it).
#pragma once

namespace osmo::spread {

// Entry from main(), before the command-line parser: argv[1] is "__spread-deputy".
int deputy_main(int argc, char** argv);

}  // namespace osmo::spread
