// SPDX-License-Identifier: GPL-2.0-or-later
// Reading execve's arguments from the caller's memory (see exec_request.hpp).
#include "spread/exec_request.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace osmo::spread {

namespace {

constexpr std::uint64_t kPage = 4096;

// Reads up to `len` bytes at `addr`, never across the end of a page in one call (a partial read
// stops at the first unmapped page). Returns the bytes read, or an error if none could be.
Result<std::size_t> read_some(pid_t pid, std::uint64_t addr, char* out, std::size_t len) {
  const std::size_t to_page_end = static_cast<std::size_t>(kPage - (addr % kPage));
  const std::size_t n = len < to_page_end ? len : to_page_end;
  iovec local{out, n};
  iovec remote{reinterpret_cast<void*>(addr), n};
  const ssize_t r = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (r <= 0) return errno_error("pid {}: cannot read its memory at {:#x}", pid, addr);
  return static_cast<std::size_t>(r);
}

}  // namespace

Result<std::string> read_remote_string(pid_t pid, std::uint64_t addr, std::size_t max) {
  std::string s;
  char buf[kPage];
  while (s.size() < max) {
    OSMO_ASSIGN_OR_RETURN(std::size_t n, read_some(pid, addr, buf, std::min<std::size_t>(sizeof buf, max - s.size())));
    const void* nul = std::memchr(buf, '\0', n);
    if (nul != nullptr) {
      s.append(buf, static_cast<std::size_t>(static_cast<const char*>(nul) - buf));
      return s;
    }
    s.append(buf, n);
    addr += n;
  }
  return make_error("pid {}: string at {:#x} longer than {} bytes", pid, addr, max);
}

Result<std::vector<std::uint64_t>> read_remote_pointers(pid_t pid, std::uint64_t addr, std::size_t max) {
  std::vector<std::uint64_t> out;
  std::uint64_t buf[kPage / sizeof(std::uint64_t)];
  while (out.size() <= max) {
    OSMO_ASSIGN_OR_RETURN(std::size_t n, read_some(pid, addr, reinterpret_cast<char*>(buf), sizeof buf));
    if (n % sizeof(std::uint64_t) != 0) return make_error("pid {}: misaligned pointer array at {:#x}", pid, addr);
    for (std::size_t i = 0; i < n / sizeof(std::uint64_t); ++i) {
      if (buf[i] == 0) return out;
      out.push_back(buf[i]);
    }
    addr += n;
  }
  return make_error("pid {}: more than {} pointers at {:#x}", pid, max, addr);
}

Result<std::vector<std::string>> read_remote_argv(pid_t pid, std::uint64_t addr) {
  if (addr == 0) return std::vector<std::string>{};
  OSMO_ASSIGN_OR_RETURN(auto ptrs, read_remote_pointers(pid, addr, kMaxArgs));
  std::vector<std::string> argv;
  std::size_t bytes = 0;
  for (std::uint64_t p : ptrs) {
    OSMO_ASSIGN_OR_RETURN(std::string a, read_remote_string(pid, p, kMaxArgvBytes));
    bytes += a.size() + 1;
    if (bytes > kMaxArgvBytes) return make_error("pid {}: argv larger than {} bytes", pid, kMaxArgvBytes);
    argv.push_back(std::move(a));
  }
  return argv;
}

}  // namespace osmo::spread
