// SPDX-License-Identifier: GPL-2.0-or-later
// Whole reads and writes on file descriptors (see fd_io.hpp). Nothing here may allocate: these
// run after fork in multi-threaded parents and on the job start path.
#include "base/fd_io.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace osmo {

namespace {

// A write that moved nothing without an error cannot make progress by being repeated (it does not
// happen on pipes, sockets or files; a device might): it ends the loop as an I/O error.
constexpr int kNoProgress = EIO;

ssize_t write_once(int fd, const iovec* iov, std::size_t count, WriteMode mode) {
  if (mode == WriteMode::kSocket) {
    msghdr mh{};
    mh.msg_iov = const_cast<iovec*>(iov);
    mh.msg_iovlen = count;
    return ::sendmsg(fd, &mh, MSG_NOSIGNAL);
  }
  if (count == 1) return ::write(fd, iov->iov_base, iov->iov_len);
  return ::writev(fd, iov, static_cast<int>(count));
}

}  // namespace

IoResult write_full(int fd, const void* data, std::size_t n, WriteMode mode) {
  iovec iov{const_cast<void*>(data), n};
  return writev_full(fd, &iov, 1, mode);
}

IoResult writev_full(int fd, iovec* iov, std::size_t count, WriteMode mode) {
  IoResult r;
  std::size_t i = 0;
  while (i < count && iov[i].iov_len == 0) ++i;
  while (i < count) {
    const std::size_t batch = std::min<std::size_t>(count - i, IOV_MAX);
    const ssize_t w = write_once(fd, iov + i, batch, mode);
    if (w < 0) {
      if (errno == EINTR) continue;
      r.error = errno;
      return r;
    }
    if (w == 0) {
      r.error = kNoProgress;
      return r;
    }
    r.bytes += static_cast<std::size_t>(w);
    // Skip what was written; a partial write leaves the rest of one entry to go.
    auto left = static_cast<std::size_t>(w);
    while (i < count && left >= iov[i].iov_len) {
      left -= iov[i].iov_len;
      iov[i].iov_len = 0;
      ++i;
    }
    if (left > 0) {
      iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
      iov[i].iov_len -= left;
    }
    while (i < count && iov[i].iov_len == 0) ++i;
  }
  return r;
}

IoResult read_full(int fd, void* data, std::size_t n) {
  IoResult r;
  auto* p = static_cast<char*>(data);
  while (r.bytes < n) {
    const ssize_t got = ::read(fd, p + r.bytes, n - r.bytes);
    if (got < 0) {
      if (errno == EINTR) continue;
      r.error = errno;
      return r;
    }
    if (got == 0) break;
    r.bytes += static_cast<std::size_t>(got);
  }
  return r;
}

IoResult read_to_end(int fd, std::string* out, std::size_t max_bytes) {
  IoResult r;
  char buf[65536];  // few calls even for the /proc/PID/smaps of a big process
  for (;;) {
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0) {
      if (errno == EINTR) continue;
      r.error = errno;
      return r;
    }
    if (got == 0) return r;
    out->append(buf, static_cast<std::size_t>(got));
    r.bytes += static_cast<std::size_t>(got);
    if (r.bytes > max_bytes) {
      r.error = EFBIG;
      return r;
    }
  }
}

int wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int n;
  do n = ::poll(&p, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -1 : (n > 0 ? 1 : 0);
}

Status write_all(int fd, std::string_view data) {
  const IoResult r = write_full(fd, data.data(), data.size());
  if (!r.ok()) return Error{r.error, fmt::format("write to fd {}", fd)};
  return ok_status();
}

}  // namespace osmo
