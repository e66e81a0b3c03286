// SPDX-License-Identifier: GPL-2.0-or-later
// The stay-local rules (see stay_local.hpp).
#include "spread/stay_local.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace osmo::spread {

std::set<std::string, std::less<>> default_stay_local_programs() {
  return {"sh",     "bash",  "dash",    "zsh",   "ksh",     "env",      "cat",   "echo",   "test",
          "[",      "true",  "false",   "sed",   "grep",    "egrep",    "fgrep", "awk",    "mawk",
          "gawk",   "cut",   "tr",      "head",  "tail",    "wc",       "sort",  "uniq",   "tee",
          "ls",     "cp",    "mv",      "rm",    "ln",      "mkdir",    "rmdir", "touch",  "chmod",
          "chown",  "date",  "sleep",   "basename", "dirname", "expr",  "printf", "pwd",   "readlink",
          "realpath", "stat", "uname",  "id",    "whoami",  "hostname", "nproc", "seq",    "xargs",
          "find",   "which", "mktemp",  "install", "ar",    "ranlib",   "make",  "gmake",  "kill",
          "ps",     "sync",  "yes",     "od",    "cmp",     "diff",     "md5sum", "sha256sum",
          "osmo"};
}

std::set<std::string, std::less<>> load_stay_local_programs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return default_stay_local_programs();
  std::set<std::string, std::less<>> out;
  std::string line;
  while (std::getline(in, line)) {
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    const auto b = line.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    const auto e = line.find_last_not_of(" \t\r");
    out.insert(line.substr(b, e - b + 1));
  }
  return out;
}

std::string_view program_name(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::optional<std::string> file_stays(pid_t pid, const std::string& path, std::string* resolved) {
  std::string abs = path;
  if (path.empty() || path[0] != '/') {
    char cwd[4096];
    const std::string link = fmt::format("/proc/{}/cwd", pid);
    const ssize_t n = ::readlink(link.c_str(), cwd, sizeof cwd - 1);
    if (n <= 0) return fmt::format("cannot read its working directory ({})", std::strerror(errno));
    abs = std::string(cwd, static_cast<std::size_t>(n)) + "/" + path;
  }
  *resolved = abs;
  // Through the caller's root, so a process in another mount namespace or a chroot is judged on
  // the file it would run.
  const std::string via = fmt::format("/proc/{}/root{}", pid, abs);
  struct stat st {};
  if (::stat(via.c_str(), &st) != 0)
    return fmt::format("cannot stat {} ({}): the exec's own error is kept", abs, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fmt::format("{} is not a regular file", abs);
  if ((st.st_mode & S_ISUID) != 0) return fmt::format("{} is setuid", abs);
  if ((st.st_mode & S_ISGID) != 0 && (st.st_mode & S_IXGRP) != 0) return fmt::format("{} is setgid", abs);
  if (::getxattr(via.c_str(), "security.capability", nullptr, 0) >= 0)
    return fmt::format("{} has file capabilities", abs);
  return std::nullopt;
}

std::optional<std::string> fds_stay(pid_t pid) {
  const std::string dir = fmt::format("/proc/{}/fd", pid);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return fmt::format("cannot list its fds ({})", std::strerror(errno));
  std::optional<std::string> why;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd <= 2) {
      // Relayed by the deputy as pipes. A terminal is not: the remote program would see a pipe
      // where it saw a tty (isatty, line editing, colours, job control), so a program started on a
      // terminal is interactive and stays with it (issue 12; the balancer may still move it later
      // with its pty, once it has used the CPU for long).
      char target[512];
      const std::string link = fmt::format("{}/{}", dir, e->d_name);
      const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      const std::string_view t(target, n > 0 ? static_cast<std::size_t>(n) : 0);
      if (t.starts_with("/dev/pts/") || t.starts_with("/dev/tty") || t.starts_with("/dev/console")) {
        why = fmt::format("fd {} is a terminal ({}): an interactive program stays with its terminal", fd, t);
        break;
      }
      continue;
    }
    // Only fds that survive the exec matter: flags in fdinfo (octal, O_CLOEXEC = 02000000).
    std::ifstream info(fmt::format("/proc/{}/fdinfo/{}", pid, fd));
    std::string key;
    unsigned long flags = 0;
    bool found = false;
    while (info >> key) {
      if (key == "flags:") {
        info >> std::oct >> flags;
        found = true;
        break;
      }
    }
    if (found && (flags & O_CLOEXEC) != 0) continue;
    char target[512];
    const std::string link = fmt::format("{}/{}", dir, e->d_name);
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    why = fmt::format("fd {} ({}) would be inherited and cannot be relayed", fd,
                      n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?");
    break;
  }
  ::closedir(d);
  return why;
}

}  // namespace osmo::spread
