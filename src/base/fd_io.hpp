// SPDX-License-Identifier: GPL-2.0-or-later
// Whole reads and writes on file descriptors: the loops around read(2), write(2), writev(2) and
// sendmsg(2) that retry EINTR and continue after a short transfer, written once. Plain POSIX, so
// that every part may use them (wire too, which gossip links and which must stay free of the
// platform layer).
//
// The loops allocate nothing, take no lock and call only async-signal-safe functions: they are
// used between fork and exec, in the processes the restorer builds and on the shepherd's job
// start path. They report errno instead of building an Error, because each caller knows what
// the bytes were ("cannot write image at offset N") and says so itself; write_all is the one
// Result-returning convenience.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace osmo {

// What one of the loops below did: `bytes` moved before it stopped, and the errno that stopped it
// (0 when it moved everything or, for a read, met end of file first).
struct IoResult {
  std::size_t bytes = 0;
  int error = 0;
  bool ok() const { return error == 0; }
};

// How to write: kFile uses write(2)/writev(2); kSocket uses send/sendmsg with MSG_NOSIGNAL, so a
// vanished peer is EPIPE instead of a SIGPIPE that kills us (the fd must be a socket).
enum class WriteMode { kFile, kSocket };

// Writes all n bytes unless an error stops it.
IoResult write_full(int fd, const void* data, std::size_t n, WriteMode mode = WriteMode::kFile);
// Writes all of iov[0..count) (any count: more than IOV_MAX goes in several calls). Consumes iov:
// on return its entries describe what was not written.
IoResult writev_full(int fd, iovec* iov, std::size_t count, WriteMode mode = WriteMode::kFile);
// Reads until n bytes came, end of file (bytes < n, error 0) or an error.
IoResult read_full(int fd, void* data, std::size_t n);

// Appends what fd yields until end of file to *out: `bytes` appended, and EFBIG once more than
// max_bytes came (what came is kept). This one allocates (the string grows).
IoResult read_to_end(int fd, std::string* out, std::size_t max_bytes = SIZE_MAX);

// Waits until fd is readable (or has hung up): 1 when it is, 0 after timeout_ms (-1 = forever),
// -1 with errno on error. An interrupted wait starts again with the whole timeout.
int wait_readable(int fd, int timeout_ms);

// Writes all of data to fd; the error names the fd ("write to fd N: <errno text>").
Status write_all(int fd, std::string_view data);

}  // namespace osmo
