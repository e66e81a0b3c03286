// SPDX-License-Identifier: GPL-2.0-or-later
// How a job's exec-filter listener reaches the node's spread supervisor (supervisor.hpp, in the
// daemon): the job's shepherd takes it from osmo init (pidfd_getfd) and sends it, with who the
// job is, over <state_dir>/spread.sock (SOCK_SEQPACKET, root only; one JSON record + the fd,
// answered by one byte; the connection then stays open while the supervisor has the job). While no
// supervisor has it (no daemon, a daemon restarting), the shepherd answers every exec "stay"
// itself (keep_supervised): an unanswered notification would hold the job's exec forever, and a
// listener nobody holds would make every exec fail with ENOSYS.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace osmo::spread {

struct JobWatch {
  std::string id;         // the job whose processes the filter watches
  std::uint64_t cookie = 0;  // the filter's bypass cookie (exec_filter.hpp)
  pid_t init_pid = -1;    // the job's osmo init, as the node sees it
  int init_listener_fd = -1;  // init's own copy of the listener (fd number in init)
};

std::filesystem::path supervisor_socket_path(const std::filesystem::path& state_dir);

// Shepherd side: sends `listener` and `watch` to the supervisor of the node whose state dir is
// `state_dir`; returns the connection once the supervisor has taken it. The supervisor keeps its
// end open while it supervises the job: its end of file means the daemon is gone.
Result<UniqueFd> hand_to_supervisor(const std::filesystem::path& state_dir, const JobWatch& watch, int listener);

// Shepherd side, for the job's whole life, on a detached thread: hands `listener` to the
// supervisor; while no supervisor has it (none yet, or the daemon died or restarts) answers every
// exec "stay" itself and offers it again every second, so that a restarted daemon supervises the
// job again. Ends when the job's last process is gone.
void keep_supervised(std::filesystem::path state_dir, JobWatch watch, UniqueFd listener);

}  // namespace osmo::spread
