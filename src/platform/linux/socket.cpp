// SPDX-License-Identifier: GPL-2.0-or-later
// Socket set-up (see socket.hpp).
#include "platform/linux/socket.hpp"

#include <sys/time.h>

#include <cerrno>
#include <cstring>

namespace osmo::platform {

namespace {

timeval to_timeval(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

}  // namespace

bool make_unix_address(const std::string& path, sockaddr_un* out) {
  *out = sockaddr_un{};
  out->sun_family = AF_UNIX;
  if (path.size() >= sizeof out->sun_path) return false;
  std::memcpy(out->sun_path, path.c_str(), path.size() + 1);
  return true;
}

UniqueFd unix_connect(const std::string& path, int type) {
  sockaddr_un addr;
  if (!make_unix_address(path, &addr)) {
    errno = ENAMETOOLONG;
    return UniqueFd();
  }
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    fd.reset();
    errno = err;
  }
  return fd;
}

void set_receive_timeout(int fd, int ms) {
  const timeval tv = to_timeval(ms);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

void set_send_timeout(int fd, int ms) {
  const timeval tv = to_timeval(ms);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace osmo::platform
