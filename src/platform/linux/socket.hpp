// SPDX-License-Identifier: GPL-2.0-or-later
// Socket set-up shared by the parts (Redis keeps the same in anet.c): unix socket addresses and
// connects (the daemon's control socket, a shepherd's control endpoint) and the kernel-side
// timeouts that bound a blocking read or write on a stream (peer handshakes, replies, migration
// streams). Errno-based like the syscalls: each caller says what the socket was for.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>

#include "base/unique_fd.hpp"

namespace osmo::platform {

// The address of a unix socket at `path`. False when the path does not fit sun_path (107 bytes).
bool make_unix_address(const std::string& path, sockaddr_un* out);

// A close-on-exec socket of `type` (SOCK_STREAM, SOCK_SEQPACKET) connected to the unix socket at
// `path`; invalid with errno set on failure (ENAMETOOLONG when the path does not fit).
UniqueFd unix_connect(const std::string& path, int type);

// SO_RCVTIMEO / SO_SNDTIMEO: a blocking read / write on fd fails with EAGAIN after ms without
// progress; 0 waits forever. Best effort, as a socket that refuses keeps blocking like before.
void set_receive_timeout(int fd, int ms);
void set_send_timeout(int fd, int ms);

}  // namespace osmo::platform
