// SPDX-License-Identifier: GPL-2.0-or-later
// The exec filter (see exec_filter.hpp): a classic BPF program, no libseccomp on this path.
#include "spread/exec_filter.hpp"

#include <alloca.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace osmo::spread {

namespace {

constexpr std::uint32_t lo32(std::uint64_t v) { return static_cast<std::uint32_t>(v); }
constexpr std::uint32_t hi32(std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32); }

}  // namespace

Result<UniqueFd> install_exec_filter(std::uint64_t cookie) {
#if defined(__x86_64__)
  // seccomp_data.args[3] is 64 bits; classic BPF loads 32 at a time (little-endian: low first).
  constexpr std::uint32_t kArg3Lo = offsetof(seccomp_data, args) + 3 * sizeof(std::uint64_t);
  constexpr std::uint32_t kArg3Hi = kArg3Lo + 4;
  sock_filter prog[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),  // 32-bit entry: not ours to judge
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_execve, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_execveat, 6, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      // execve: the cookie in args[3] lets it through.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg3Lo),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, lo32(cookie), 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg3Hi),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hi32(cookie), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
  };
  sock_fprog fprog{static_cast<unsigned short>(sizeof prog / sizeof prog[0]), prog};
  const long fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
  if (fd < 0) return errno_error("seccomp: cannot install the exec filter");
  return UniqueFd(static_cast<int>(fd));
#else
  (void)cookie;
  return make_error("spreading at exec needs x86_64 (the exec filter reads x86_64 registers)");
#endif
}

int exec_bypass(const char* path, char* const argv[], char* const envp[], std::uint64_t cookie) {
  return static_cast<int>(::syscall(SYS_execve, path, argv, envp, cookie, 0, 0));
}

int execvp_bypass(const char* file, char* const argv[], char* const envp[], std::uint64_t cookie) {
  auto run = [&](const char* path) {
    exec_bypass(path, argv, envp, cookie);
    if (errno == ENOEXEC) {
      // As execvp: a file without "#!" is a shell script. argv gets "/bin/sh" in front, in a copy
      // of the pointer array on the stack, as glibc's execvp makes it (no allocation allowed here;
      // osmo init sizes the job's stack for a copy of argv, job_init.cpp).
      std::size_t n = 0;
      while (argv[n] != nullptr) ++n;
      // "/bin/sh", the path, argv[1..n), the terminator: n + 2 entries (3 for an empty argv).
      char** sh_argv = static_cast<char**>(alloca((n + 3) * sizeof(char*)));
      std::size_t at = 0;
      sh_argv[at++] = const_cast<char*>("/bin/sh");
      sh_argv[at++] = const_cast<char*>(path);
      for (std::size_t i = 1; i < n; ++i) sh_argv[at++] = argv[i];
      sh_argv[at] = nullptr;
      exec_bypass("/bin/sh", sh_argv, envp, cookie);
      errno = ENOEXEC;
    }
  };
  if (file[0] == '\0') {
    errno = ENOENT;
    return -1;
  }
  if (std::strchr(file, '/') != nullptr) {
    run(file);
    return -1;
  }
  const char* path = "/bin:/usr/bin";
  for (std::size_t i = 0; envp[i] != nullptr; ++i)
    if (std::strncmp(envp[i], "PATH=", 5) == 0) path = envp[i] + 5;
  const std::size_t flen = std::strlen(file);
  bool got_eacces = false;
  int last = ENOENT;
  char buf[4096];
  for (const char* p = path;; ++p) {
    const char* end = std::strchr(p, ':');
    const std::size_t dlen = end != nullptr ? static_cast<std::size_t>(end - p) : std::strlen(p);
    if (dlen + flen + 2 <= sizeof buf) {
      std::size_t at = 0;
      if (dlen == 0) {
        buf[at++] = '.';  // an empty PATH entry is the current directory
      } else {
        std::memcpy(buf, p, dlen);
        at = dlen;
      }
      buf[at++] = '/';
      std::memcpy(buf + at, file, flen + 1);
      run(buf);
      // execvp's rules: keep searching on these, remember EACCES, stop on anything else.
      if (errno == EACCES) got_eacces = true;
      else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV && errno != ETIMEDOUT)
        return -1;
      last = errno;
    } else {
      last = ENAMETOOLONG;
    }
    if (end == nullptr) break;
    p = end;
  }
  errno = got_eacces ? EACCES : last;
  return -1;
}

}  // namespace osmo::spread
