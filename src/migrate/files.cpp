// SPDX-License-Identifier: GPL-2.0-or-later
// The job's files, listed at the source and checked at the target (see files.hpp).
#include "migrate/files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>

#include <fmt/format.h>

#include "platform/linux/proc_files.hpp"
#include "platform/linux/sysfs_io.hpp"

namespace osmo::migrate {
namespace {

struct Seen {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool writable = false;
};

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Adds `path` as the job sees it through `via` (a /proc link to the same file): stat through the
// link, so a file renamed or replaced since it was opened is described as the job has it.
void add(std::map<std::string, Seen>& files, const std::string& path, const std::string& via, bool writable) {
  if (path.empty() || path[0] != '/' || path.ends_with(" (deleted)")) return;  // deleted: carried in the image
  struct stat st {};
  if (::stat(via.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  Seen& s = files[path];
  s.size = static_cast<std::uint64_t>(st.st_size);
  s.mtime_ns = mtime_ns(st);
  s.writable = s.writable || writable;
}

}  // namespace

namespace {

// One process's files into `files`.
Status add_process_files(std::map<std::string, Seen>& files, pid_t pid) {
  const std::string proc = fmt::format("/proc/{}", pid);
  char buf[4096];
  if (ssize_t n = ::readlink((proc + "/exe").c_str(), buf, sizeof buf - 1); n > 0)
    add(files, std::string(buf, static_cast<std::size_t>(n)), proc + "/exe", false);
  OSMO_ASSIGN_OR_RETURN(auto fds, platform::list_directory(proc + "/fd", /*only_dirs=*/false));
  for (const auto& fd : fds) {
    const std::string link = proc + "/fd/" + fd;
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    auto info = platform::read_text_file(proc + "/fdinfo/" + fd);
    bool writable = false;
    if (info.ok()) {
      auto p = info->find("flags:");
      if (p != std::string::npos) writable = (std::stoul(info->substr(p + 6), nullptr, 8) & O_ACCMODE) != O_RDONLY;
    }
    add(files, std::string(buf, static_cast<std::size_t>(n)), link, writable);
  }
  OSMO_ASSIGN_OR_RETURN(std::string maps, platform::read_text_file(proc + "/maps"));
  std::size_t at = 0;
  while (at < maps.size()) {
    std::size_t nl = maps.find('\n', at);
    if (nl == std::string::npos) nl = maps.size();
    const std::string line = maps.substr(at, nl - at);
    at = nl + 1;
    // "start-end perms offset dev inode   path"
    const std::size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::size_t dash = line.find('-');
    const std::size_t space = line.find(' ');
    if (dash == std::string::npos || space == std::string::npos) continue;
    const std::string range = line.substr(0, space);
    const bool shared_writable = line.size() > space + 4 && line[space + 2] == 'w' && line[space + 4] == 's';
    add(files, line.substr(slash), proc + "/map_files/" + range, shared_writable);
  }
  return ok_status();
}

}  // namespace

std::vector<pid_t> job_processes(pid_t init_pid) {
  std::vector<pid_t> out;
  std::vector<pid_t> todo = platform::process_children(init_pid);
  while (!todo.empty() && out.size() < 100000) {
    const pid_t p = todo.back();
    todo.pop_back();
    out.push_back(p);
    for (pid_t c : platform::process_children(p)) todo.push_back(c);
  }
  return out;
}

Result<nlohmann::json> job_files(const std::vector<pid_t>& pids) {
  std::map<std::string, Seen> files;
  for (pid_t pid : pids) {
    Status st = add_process_files(files, pid);
    if (!st.ok() && ::kill(pid, 0) == 0) return st.take_error();  // one that exited meanwhile is no error
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [path, s] : files)
    out.push_back({{"path", path}, {"size", s.size}, {"mtime_ns", s.mtime_ns}, {"writable", s.writable}});
  return out;
}

Status check_files_here(const nlohmann::json& files) {
  if (!files.is_array()) return make_error("malformed file list");
  for (const auto& f : files) {
    const std::string path = f.value("path", "");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno_error("{} cannot be opened here", path);
    if (!S_ISREG(st.st_mode)) return make_error("{} is not a regular file here", path);
    if (f.value("writable", false)) continue;
    const auto size = f.value("size", std::uint64_t{0});
    const auto mtime = f.value("mtime_ns", std::int64_t{0});
    if (static_cast<std::uint64_t>(st.st_size) != size || mtime_ns(st) != mtime)
      return make_error("{} differs here (size {}, mtime {}; at the source size {}, mtime {})", path, st.st_size,
                        mtime_ns(st) / 1'000'000'000, size, mtime / 1'000'000'000);
  }
  return ok_status();
}

}  // namespace osmo::migrate
