// SPDX-License-Identifier: GPL-2.0-or-later
// pidfd syscalls (see pidfd.hpp).
#include "platform/linux/pidfd.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "platform/linux/sysfs_io.hpp"

namespace osmo::platform {

UniqueFd pidfd_open(pid_t pid) {
  // A pidfd is close-on-exec from the start; pidfd_open has no flag for it and needs none.
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

int pidfd_signal(int pidfd, int sig, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, flags));
}

UniqueFd pidfd_getfd(int pidfd, int target_fd) {
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, target_fd, 0)));
}

UniqueFd take_fd(pid_t pid, int target_fd) {
  UniqueFd pidfd = pidfd_open(pid);
  if (!pidfd) return UniqueFd();
  UniqueFd fd = pidfd_getfd(pidfd.get(), target_fd);
  const int err = errno;
  pidfd.reset();  // the errno the caller sees is the getfd's, whatever close(2) does
  errno = err;
  return fd;
}

Result<pid_t> pid_of_pidfd(int pidfd) {
  OSMO_ASSIGN_OR_RETURN(std::string info, read_text_file(fmt::format("/proc/self/fdinfo/{}", pidfd)));
  auto p = info.find("\nPid:");
  if (p == std::string::npos) return make_error("no Pid line in the fdinfo of pidfd {}", pidfd);
  long v = std::strtol(info.c_str() + p + 5, nullptr, 10);
  if (v <= 0) return make_error("pidfd {} names no process in our pid namespace (Pid: {})", pidfd, v);
  return static_cast<pid_t>(v);
}

}  // namespace osmo::platform
