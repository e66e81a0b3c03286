// SPDX-License-Identifier: GPL-2.0-or-later
// The restorer's messages (messages.hpp): one datagram each, with at most one fd.
#include "ckpt/restorer/messages.hpp"

#include <unistd.h>

#include <cstring>
#include <span>
#include <vector>

#include "base/fd_io.hpp"
#include "platform/linux/fd_passing.hpp"

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
  const std::span<const int> fds(&pass_fd, pass_fd >= 0 ? 1 : 0);
  if (platform::send_with_fds(sock, buf.data(), buf.size(), fds) < 0)
    return errno_error("cannot send the restorer's '{}' message", tag_name(tag));
  return ok_status();
}

Result<Message> recv_msg(int sock, const char* waiting_for, int timeout_ms) {
  const int pr = wait_readable(sock, timeout_ms);
  if (pr < 0) return errno_error("cannot wait for {}", waiting_for);
  if (pr == 0) return make_error("timed out after {} ms waiting for {}", timeout_ms, waiting_for);
  std::vector<char> buf(8192);
  platform::ReceivedFds fds;
  const ssize_t n = platform::recv_with_fds(sock, buf.data(), buf.size(), &fds);
  if (n < 0) return errno_error("cannot receive {}", waiting_for);
  if (n == 0) return make_error("the restore helper exited before sending {}", waiting_for);
  Message m;
  if (fds.count > 0) m.fd = fds.take(0);  // one fd per message: any other is closed with `fds`
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
