// SPDX-License-Identifier: GPL-2.0-or-later
// /proc parsing for the engine.
#include "ckpt/proc.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "base/unique_fd.hpp"

namespace osmo::ckpt {

Result<std::string> read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return errno_error("cannot readlink {}", path);
  return std::string(buf, static_cast<std::size_t>(n));
}

Result<ProcStatus> parse_status(std::string_view text) {
  OSMO_ASSIGN_OR_RETURN(ProcStatus s, platform::parse_pid_status(text));
  if (s.threads == 0 || s.nspid.empty()) return make_error("malformed /proc status (no Threads/NSpid)");
  return s;
}

Result<ProcStatus> read_status(pid_t pid) {
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(fmt::format("/proc/{}/status", pid)));
  return parse_status(text);
}

bool MapsEntry::deleted() const {
  static constexpr std::string_view kSuffix = " (deleted)";
  return name.size() > kSuffix.size() && name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}
std::string MapsEntry::path_without_deleted() const {
  return deleted() ? name.substr(0, name.size() - 10) : name;
}

Result<std::vector<MapsEntry>> parse_maps(const std::string& text) {
  std::vector<MapsEntry> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty()) continue;
    MapsEntry e;
    char perms[5] = {};
    unsigned long long start, end, off, ino;
    unsigned maj, min;
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj,
                    &min, &ino, &consumed) < 7)
      return make_error("malformed maps line: '{}'", line);
    e.start = start;
    e.end = end;
    e.r = perms[0] == 'r';
    e.w = perms[1] == 'w';
    e.x = perms[2] == 'x';
    e.shared = perms[3] == 's';
    e.offset = off;
    e.dev_major = maj;
    e.dev_minor = min;
    e.inode = ino;
    if (consumed > 0 && static_cast<std::size_t>(consumed) <= line.size()) e.name = line.substr(consumed);
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<MapsEntry>> read_maps(pid_t pid) {
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(fmt::format("/proc/{}/maps", pid)));
  return parse_maps(text);
}

Result<std::vector<std::string>> read_stat_fields(pid_t pid) {
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(fmt::format("/proc/{}/stat", pid)));
  std::string_view f[64];
  const std::size_t n = platform::split_pid_stat(text, f);
  if (n == 0) return make_error("malformed /proc/{}/stat", pid);
  if (n < 51) return make_error("/proc/{}/stat has {} fields, expected at least 51", pid, n);
  return std::vector<std::string>(f, f + n + 1);
}

Result<FdInfo> parse_fdinfo(const std::string& text) {
  FdInfo fi;
  bool have_flags = false;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("pos:", 0) == 0) fi.pos = std::stoull(line.substr(4));
    if (line.rfind("flags:", 0) == 0) {
      fi.flags = static_cast<std::uint32_t>(std::stoul(line.substr(6), nullptr, 8));
      have_flags = true;
    }
  }
  if (!have_flags) return make_error("malformed fdinfo (no flags line)");
  return fi;
}

Result<std::vector<int>> list_fds(pid_t pid) {
  std::string dir = fmt::format("/proc/{}/fd", pid);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno_error("cannot list {}", dir);
  std::vector<int> fds;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    fds.push_back(std::atoi(e->d_name));
  }
  ::closedir(d);
  std::sort(fds.begin(), fds.end());
  return fds;
}

}  // namespace osmo::ckpt
