// SPDX-License-Identifier: GPL-2.0-or-later
// /proc/PID files (see proc_files.hpp).
#include "platform/linux/proc_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/fd_io.hpp"
#include "platform/linux/sysfs_io.hpp"

namespace osmo::platform {

std::string_view read_small_file(const char* path, char* buf, std::size_t cap) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  const std::size_t n = read_full(fd, buf, cap).bytes;  // an error ends it like end of file
  ::close(fd);
  return {buf, n};
}

Result<PidStat> read_pid_stat(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  // The fields we need (up to 24) fit in 1 KiB whatever the numbers; the rest may be cut.
  char buf[1024];
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("cannot open {}", path);
  const IoResult r = read_full(fd, buf, sizeof buf);
  ::close(fd);
  if (!r.ok()) return Error{r.error, fmt::format("cannot read {}", path)};
  auto st = parse_pid_stat(std::string_view(buf, r.bytes));
  if (!st.ok()) return make_error("{}: {}", path, st.error().message);
  return st;
}

std::uint64_t process_start_ticks(pid_t pid) {
  if (pid <= 0) return 0;
  auto st = read_pid_stat(pid);
  return st.ok() ? st->start_ticks : 0;
}

Result<PidStatus> read_pid_status(pid_t pid) {
  const std::string path = fmt::format("/proc/{}/status", pid);
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  auto st = parse_pid_status(text);
  if (!st.ok()) return make_error("{}: {}", path, st.error().message);
  return st;
}

Result<std::vector<SmapsVma>> read_smaps(pid_t pid) {
  const std::string path = fmt::format("/proc/{}/smaps", pid);
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  auto vmas = parse_smaps(text);
  if (!vmas.ok()) return make_error("{}: {}", path, vmas.error().message);
  return vmas;
}

std::vector<pid_t> process_children(pid_t pid) {
  std::vector<pid_t> out;
  auto tasks = list_directory(fmt::format("/proc/{}/task", pid), /*only_dirs=*/true);
  if (!tasks.ok()) return out;
  for (const auto& t : *tasks) {
    auto text = read_text_file(fmt::format("/proc/{}/task/{}/children", pid, t));
    if (!text.ok()) continue;  // the thread ended since the listing
    const std::size_t have = out.size();
    auto n = parse_pid_list(*text, {});  // how many there are
    if (!n) continue;
    out.resize(have + *n);
    (void)parse_pid_list(*text, std::span<pid_t>(out).subspan(have));
  }
  return out;
}

}  // namespace osmo::platform
