// SPDX-License-Identifier: GPL-2.0-or-later
// SCM_RIGHTS fd passing (see fd_passing.hpp).
#include "platform/linux/fd_passing.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace osmo::platform {

namespace {
constexpr std::size_t kControlBytes = CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage);
}  // namespace

void ReceivedFds::clear() {
  for (std::size_t i = 0; i < count; ++i) fds[i].reset();
  count = 0;
  truncated = false;
}

ssize_t send_with_fds(int sock, const void* data, std::size_t n, std::span<const int> fds) {
  if (fds.size() > kMaxFdsPerMessage) {
    errno = EINVAL;
    return -1;
  }
  iovec iov{const_cast<void*>(data), n};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[kControlBytes] = {};
  if (!fds.empty()) {
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t w;
  do w = ::sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  return w;
}

ssize_t recv_with_fds(int sock, void* buf, std::size_t n, ReceivedFds* fds, int flags) {
  iovec iov{buf, n};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[kControlBytes];
  if (fds != nullptr) {
    fds->clear();
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
  }
  ssize_t got;
  do got = ::recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
  while (got < 0 && errno == EINTR);
  if (got < 0 || fds == nullptr) return got;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm != nullptr; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
      // The control buffer holds kMaxFdsPerMessage, so this never overflows; kept as a bound.
      if (fds->count < kMaxFdsPerMessage)
        fds->fds[fds->count++].reset(fd);
      else
        ::close(fd);
    }
  }
  fds->truncated = (mh.msg_flags & MSG_CTRUNC) != 0;
  return got;
}

ssize_t next_record_size(int sock, int flags) {
  char probe;
  ssize_t len;
  do len = ::recv(sock, &probe, 1, MSG_PEEK | MSG_TRUNC | flags);
  while (len < 0 && errno == EINTR);
  return len;
}

}  // namespace osmo::platform
