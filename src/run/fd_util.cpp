// SPDX-License-Identifier: GPL-2.0-or-later
// Small fd helpers (see fd_util.hpp).
#include "run/fd_util.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <vector>

namespace osmo::run {

void close_fds_except(std::initializer_list<int> keep) {
  int sorted[16];
  int n = 0;
  for (int fd : keep)
    if (fd >= 0 && n < 16) sorted[n++] = fd;
  std::sort(sorted, sorted + n);
  unsigned from = 3;
  for (int i = 0; i < n; ++i) {
    const auto fd = static_cast<unsigned>(sorted[i]);
    if (fd < from) continue;
    if (fd > from) ::syscall(SYS_close_range, from, fd - 1, 0);
    from = fd + 1;
  }
  ::syscall(SYS_close_range, from, ~0u, 0);
}

Status set_nonblocking(int fd, bool on) {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0) return errno_error("fcntl(F_GETFL) on fd {}", fd);
  const int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (want != fl && ::fcntl(fd, F_SETFL, want) < 0) return errno_error("fcntl(F_SETFL) on fd {}", fd);
  return ok_status();
}

void set_stream_liveness(int fd) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return;
  if (domain != AF_INET && domain != AF_INET6) return;
  // Idle 2 s, then a probe every 1 s, dead after 3 unanswered: a vanished peer is noticed in ~5 s.
  // No TCP_USER_TIMEOUT: it also aborts a healthy stream whose reader is merely slow (a zero
  // window that lasts), e.g. `osmo run cat big | less` left paused; the anchor's heartbeat
  // timer covers a dead node with data in flight instead.
  const int on = 1, idle_s = 2, intvl_s = 1, cnt = 3, nodelay = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s, sizeof intvl_s);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
}

}  // namespace osmo::run
