// SPDX-License-Identifier: GPL-2.0-or-later
// Small fd helpers shared by the shepherd, osmo init and the anchor.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string_view>

#include "base/fd_io.hpp"  // write_all and the other whole reads/writes, shared by every part
#include "base/result.hpp"

namespace osmo::run {

// Closes every fd >= 3 not in `keep` (and 0-2 are kept unless listed elsewhere). Async-signal-safe
// enough for use between fork and exec (close_range only).
void close_fds_except(std::initializer_list<int> keep);

Status set_nonblocking(int fd, bool on);
// Configures liveness detection on a TCP stream: keepalive with short timers, so an idle stream
// to a vanished peer breaks within seconds. No-op on other sockets.
void set_stream_liveness(int fd);

}  // namespace osmo::run
