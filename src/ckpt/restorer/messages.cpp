// SPDX-License-Identifier: GPL-2.0-or-later
// The restorer's messages (messages.hpp): one datagram each, with at most one fd.
#include "ckpt/restorer/messages.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace osmo::ckpt::restorer {

const char* tag_name(MsgTag t) {
  switch (t) {
    case MsgTag::kError: return "error";
    case MsgTag::kPidfd: return "pidfd";
    case MsgTag::kReady: return "ready";
    case MsgTag::kGo: return "go";
    case MsgTag::kDetached: return "detached";
  }
  return "unknown";
}

Status send_msg(int sock, MsgTag tag, const void* body, std::size_t n, int pass_fd) {
  std::vector<char> buf(1 + n);
  buf[0] = static_cast<char>(tag);
  if (n > 0) std::memcpy(buf.data() + 1, body, n);
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  if (pass_fd >= 0) {
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
  }
  ssize_t w;
  do w = ::sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w < 0) return errno_error("cannot send the restorer's '{}' message", tag_name(tag));
  return ok_status();
}

Result<Message> recv_msg(int sock, const char* waiting_for, int timeout_ms) {
  pollfd p{sock, POLLIN, 0};
  int pr;
  do pr = ::poll(&p, 1, timeout_ms);
  while (pr < 0 && errno == EINTR);
  if (pr < 0) return errno_error("cannot wait for {}", waiting_for);
  if (pr == 0) return make_error("timed out after {} ms waiting for {}", timeout_ms, waiting_for);
  std::vector<char> buf(8192);
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  ssize_t n;
  do n = ::recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno_error("cannot receive {}", waiting_for);
  if (n == 0) return make_error("the restore helper exited before sending {}", waiting_for);
  Message m;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm != nullptr; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
      m.fd.reset(fd);
    }
  m.tag = static_cast<MsgTag>(buf[0]);
  switch (m.tag) {
    case MsgTag::kError: case MsgTag::kPidfd: case MsgTag::kReady: case MsgTag::kGo: case MsgTag::kDetached:
      break;
    default:
      return make_error("internal: unknown restorer message tag {:#x} while waiting for {}",
                        static_cast<unsigned char>(buf[0]), waiting_for);
  }
  m.body.assign(buf.data() + 1, static_cast<std::size_t>(n - 1));
  return m;
}

void die_with(int sock, const Error& e) {
  std::string s = e.str();
  (void)send_msg(sock, MsgTag::kError, s.data(), s.size());
  ::_exit(127);
}

}  // namespace osmo::ckpt::restorer
