// SPDX-License-Identifier: GPL-2.0-or-later
// The job's user namespace when the daemon is not root (user_ns.hpp).
#include "platform/linux/user_ns.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace osmo::platform {
namespace {

// Each of these files takes its whole content in one write(2) (user_namespaces(7)).
int write_once(const char* path, const char* text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const auto n = static_cast<ssize_t>(std::strlen(text));
  const ssize_t w = ::write(fd, text, static_cast<std::size_t>(n));
  const int err = w < 0 ? errno : EIO;
  ::close(fd);
  return w == n ? 0 : err;
}

}  // namespace

bool jobs_need_user_namespace() { return ::geteuid() != 0; }

int map_own_ids(uid_t uid, gid_t gid) {
  char line[64];
  if (int e = write_once("/proc/self/setgroups", "deny"); e != 0) return e;
  std::snprintf(line, sizeof line, "%u %u 1\n", static_cast<unsigned>(uid), static_cast<unsigned>(uid));
  if (int e = write_once("/proc/self/uid_map", line); e != 0) return e;
  std::snprintf(line, sizeof line, "%u %u 1\n", static_cast<unsigned>(gid), static_cast<unsigned>(gid));
  return write_once("/proc/self/gid_map", line);
}

}  // namespace osmo::platform
