// SPDX-License-Identifier: GPL-2.0-or-later
// The sd_notify(3) datagram, written here instead of linking libsystemd: every `osmo` command is
// this one binary, linked statically but for glibc for its start latency (docs/run.md), and
// libsystemd (shared only on Debian) would pull half a dozen libraries into every `osmo run`. The
// protocol is a documented interface of systemd ("sd_notify(3)": one datagram on an AF_UNIX socket
// whose path, or abstract name after '@', is in $NOTIFY_SOCKET).
#include "daemon/service_manager.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

#include "base/unique_fd.hpp"

namespace osmo::daemon {

namespace {

std::mutex g_mu;
bool g_taken = false;
std::optional<std::string> g_socket;  // $NOTIFY_SOCKET as it was at the first call

}  // namespace

Status notify_service_manager(std::string_view state) {
  std::lock_guard lk(g_mu);
  if (!g_taken) {
    g_taken = true;
    if (const char* s = std::getenv("NOTIFY_SOCKET"); s != nullptr && *s != '\0') g_socket = s;
    ::unsetenv("NOTIFY_SOCKET");
  }
  if (!g_socket) return ok_status();
  const std::string& path = *g_socket;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || path.size() >= sizeof addr.sun_path)
    return make_error("NOTIFY_SOCKET={} is neither an absolute path nor an abstract name that fits a "
                      "unix socket address", path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return make_error("cannot create a socket to notify the service manager: {}", std::strerror(errno));
  if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len) < 0)
    return make_error("cannot notify the service manager at {}: {}", path, std::strerror(errno));
  return ok_status();
}

}  // namespace osmo::daemon
