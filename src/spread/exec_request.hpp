// SPDX-License-Identifier: GPL-2.0-or-later
// Reading an exec request of a job's process: the path and argv it passes to execve, from its
// memory (process_vm_readv), while the seccomp notification holds it inside the syscall. The
// memory is the caller's and may change under us (another thread), so every value read here is
// re-validated with SECCOMP_IOCTL_NOTIF_ID_VALID by the supervisor before it acts on it, and
// nothing read here is trusted beyond "what the caller asked for".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace osmo::spread {

// Bounds: as the kernel's (PATH_MAX; MAX_ARG_STRINGS is larger, but a longer argv cannot be
// relayed in one spec anyway).
inline constexpr std::size_t kMaxPathBytes = 4096;
inline constexpr std::size_t kMaxArgs = 65536;
inline constexpr std::size_t kMaxArgvBytes = 2u << 20;

// A NUL-terminated string at `addr` in process `pid` (at most `max` bytes), read page by page so
// that a string that ends just before an unmapped page is still read.
Result<std::string> read_remote_string(pid_t pid, std::uint64_t addr, std::size_t max);

// The pointer array at `addr` (argv or envp) up to its NULL.
Result<std::vector<std::uint64_t>> read_remote_pointers(pid_t pid, std::uint64_t addr, std::size_t max);

// argv: the strings of the pointer array at `addr`.
Result<std::vector<std::string>> read_remote_argv(pid_t pid, std::uint64_t addr);

}  // namespace osmo::spread
