// SPDX-License-Identifier: GPL-2.0-or-later
// Readers/writers for procfs, sysfs and cgroupfs text files (see sysfs_io.hpp).
#include "platform/linux/sysfs_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>

#include "base/fd_io.hpp"
#include "base/unique_fd.hpp"

namespace osmo::platform {

Result<std::string> read_text_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("cannot open {}", path);
  std::string out;
  if (const IoResult r = read_to_end(fd.get(), &out); !r.ok()) return Error{r.error, fmt::format("cannot read {}", path)};
  return out;
}

Result<std::string> read_trimmed(const std::string& path) {
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return std::string(trim(text));
}

Result<std::uint64_t> read_u64_file(const std::string& path) {
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  std::uint64_t v = 0;
  if (!parse_u64(trim(text), &v))
    return make_error("{}: expected an unsigned number, found '{}'", path, trim(text));
  return v;
}

Status write_text_file(const std::string& path, std::string_view text) {
  // O_TRUNC is ignored by cgroupfs and sysfs (as with the shell's `echo > file`) and makes the
  // regular files of fake trees in tests behave the same.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) return errno_error("open {} for writing", path);
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n < 0) return errno_error("write '{}' to {}", trim(text), path);
  if (static_cast<std::size_t>(n) != text.size())
    return make_error("write '{}' to {}: short write ({} of {} bytes)", trim(text), path, n,
                      text.size());
  return ok_status();
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<std::vector<std::string>> list_directory(const std::string& path, bool only_dirs) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return errno_error("opendir {}", path);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (only_dirs) {
      bool dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) dir = is_directory(path + "/" + name);
      if (!dir) continue;
    }
    names.push_back(std::move(name));
  }
  ::closedir(d);
  return names;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\n\r";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool parse_u64(std::string_view s, std::uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_i64(std::string_view s, std::int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace osmo::platform
