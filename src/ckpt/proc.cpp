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

Result<std::string> read_text_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("cannot open {}", path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t r = ::read(fd.get(), buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_error("cannot read {}", path);
    }
    if (r == 0) break;
    out.append(buf, static_cast<std::size_t>(r));
  }
  return out;
}

Result<std::string> read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return errno_error("cannot readlink {}", path);
  return std::string(buf, static_cast<std::size_t>(n));
}

Result<ProcStatus> parse_status(const std::string& text) {
  ProcStatus s;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    std::istringstream val(line.substr(colon + 1));
    if (key == "State") {
      std::string st;
      val >> st;
      s.state = st.empty() ? '?' : st[0];
    } else if (key == "Threads") {
      val >> s.threads;
    } else if (key == "TracerPid") {
      val >> s.tracer_pid;
    } else if (key == "Uid") {
      for (auto& u : s.uid) val >> u;
    } else if (key == "Gid") {
      for (auto& g : s.gid) val >> g;
    } else if (key == "Groups") {
      std::uint32_t g;
      while (val >> g) s.groups.push_back(g);
    } else if (key == "Umask") {
      std::string u;
      val >> u;
      s.umask = static_cast<std::uint32_t>(std::stoul(u, nullptr, 8));
    } else if (key == "NSpid" || key == "NSpgid" || key == "NSsid") {
      auto& v = key == "NSpid" ? s.nspid : key == "NSpgid" ? s.nspgid : s.nssid;
      pid_t p;
      while (val >> p) v.push_back(p);
    } else if (key == "CapInh" || key == "CapPrm" || key == "CapEff" || key == "CapBnd" || key == "CapAmb") {
      std::string hexv;
      val >> hexv;
      std::uint64_t bits = 0;
      try {
        bits = std::stoull(hexv, nullptr, 16);
      } catch (const std::exception&) {
        return make_error("malformed /proc status line '{}'", line);
      }
      (key == "CapInh" ? s.cap_inh : key == "CapPrm" ? s.cap_prm : key == "CapEff" ? s.cap_eff
                                   : key == "CapBnd" ? s.cap_bnd : s.cap_amb) = bits;
    }
  }
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
  // comm (field 2) may contain spaces and parentheses: it ends at the last ')'.
  auto open = text.find('(');
  auto close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    return make_error("malformed /proc/{}/stat", pid);
  std::vector<std::string> f{"", text.substr(0, open - 1), text.substr(open + 1, close - open - 1)};
  std::istringstream in(text.substr(close + 1));
  std::string tok;
  while (in >> tok) f.push_back(tok);
  if (f.size() < 52) return make_error("/proc/{}/stat has {} fields, expected at least 51", pid, f.size() - 1);
  return f;
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

Result<pid_t> pid_of_pidfd(int pidfd) {
  OSMO_ASSIGN_OR_RETURN(std::string info, read_text_file(fmt::format("/proc/self/fdinfo/{}", pidfd)));
  auto p = info.find("\nPid:");
  if (p == std::string::npos) return make_error("no Pid line in the fdinfo of pidfd {}", pidfd);
  long v = std::strtol(info.c_str() + p + 5, nullptr, 10);
  if (v <= 0) return make_error("pidfd {} names no process in our pid namespace (Pid: {})", pidfd, v);
  return static_cast<pid_t>(v);
}

}  // namespace osmo::ckpt
