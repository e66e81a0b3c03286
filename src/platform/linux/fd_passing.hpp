// SPDX-License-Identifier: GPL-2.0-or-later
// Passing file descriptors over unix sockets (SCM_RIGHTS), written once for every part that does
// it: the control socket's lines (daemon), the restorer's messages (ckpt), a job handed to a warm
// shepherd and an attaching stream handed to the anchor (run), a shepherd's control packets
// (migrate). Each caller keeps its own framing (lines, tagged datagrams, JSON records) and its own
// error text; this file owns the control-message buffers and the cmsg walking.
//
// Nothing here allocates: a job handed to a warm shepherd goes through recv_with_fds on the
// job start path (docs/run.md, "Where the time goes").
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <span>
#include <utility>

#include "base/unique_fd.hpp"

namespace osmo::platform {

// At most this many fds ride on one message (ours carry one or two; the kernel allows 253).
inline constexpr std::size_t kMaxFdsPerMessage = 16;

// The fds that came with one message. They are ours: closed with this object unless taken.
struct ReceivedFds {
  std::array<UniqueFd, kMaxFdsPerMessage> fds;
  std::size_t count = 0;
  // More fds came than kMaxFdsPerMessage: the kernel closed the rest (MSG_CTRUNC).
  bool truncated = false;

  UniqueFd take(std::size_t i) { return std::move(fds[i]); }
  void clear();
};

// One sendmsg(2) of n bytes with `fds` attached (none when empty), MSG_NOSIGNAL, retried on
// EINTR. Returns the bytes sent (on a stream socket possibly fewer than n: the fds went with the
// first of them) or -1 with errno; EINVAL for more than kMaxFdsPerMessage fds. The sender keeps
// its own copies of the fds.
ssize_t send_with_fds(int sock, const void* data, std::size_t n, std::span<const int> fds);

// One recvmsg(2) of at most n bytes into buf, MSG_CMSG_CLOEXEC | flags (e.g. MSG_DONTWAIT),
// retried on EINTR. The fds that came with it replace the content of *fds; with fds == nullptr
// the caller accepts none and the kernel closes whatever came. Returns the bytes received (0 at
// end of file; a datagram longer than n is cut, MSG_TRUNC) or -1 with errno.
ssize_t recv_with_fds(int sock, void* buf, std::size_t n, ReceivedFds* fds, int flags = 0);

// The length of the next record of a SOCK_SEQPACKET or SOCK_DGRAM socket, without taking it
// (MSG_PEEK | MSG_TRUNC), so that a buffer of the right size can receive it whole: 0 at end of
// file, -1 with errno. Blocks like a read unless flags has MSG_DONTWAIT.
ssize_t next_record_size(int sock, int flags = 0);

}  // namespace osmo::platform
