// SPDX-License-Identifier: GPL-2.0-or-later
// How a job's exec-filter listener reaches the node's spread supervisor (supervisor.hpp, in the
// daemon): the job's shepherd takes it from osmo init (pidfd_getfd) and sends it, with who the
// job is, over <state_dir>/spread.sock (SOCK_SEQPACKET, root only; one JSON record + the fd,
// answered by one byte). If no supervisor takes it (no daemon, an old daemon), the shepherd
// answers every exec "stay" itself (answer_all_stay): an unanswered notification would hold the
// job's exec forever, and a listener nobody holds would make every exec fail with ENOSYS.
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
// `state_dir`; ok once the supervisor has taken it.
Status hand_to_supervisor(const std::filesystem::path& state_dir, const JobWatch& watch, int listener);

// Answers every notification of `listener` with "continue" (the exec runs here, unchanged) on a
// detached thread, until the job's last process is gone.
void answer_all_stay(UniqueFd listener);

}  // namespace osmo::spread
