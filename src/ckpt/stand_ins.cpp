// SPDX-License-Identifier: GPL-2.0-or-later
// Stand-ins for fds that cannot travel (pipes to other processes, ttys, sockets): the resolvers
// a restore asks for them (ckpt.hpp). InheritStdioResolver gives fds 0-2 the restoring command's
// own; StandInResolver adds what the user names with `osmo restore --fd N=PATH|null`. Without
// the latter a process that held such an fd above 2 could be checkpointed with --kill and then
// never restored: that is why `osmo checkpoint --kill` refuses it unless told --stand-ins-ok,
// and says which --fd options the restore will need.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "ckpt/ckpt.hpp"

namespace osmo::ckpt {

Result<int> InheritStdioResolver::resolve(const FdImage& r) {
  if (r.fd > 2)
    return make_error("{} needs a stand-in: give one with --fd {}=PATH or --fd {}=null (only fds 0-2 are "
                      "inherited from the restoring command)", describe_fd(r), r.fd, r.fd);
  if (::fcntl(r.fd, F_GETFD) < 0)
    return errno_error("{} would be inherited from the restoring command, whose fd {} is not open", describe_fd(r),
                       r.fd);
  return r.fd;
}

Result<StandInSpec> parse_stand_in_spec(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos)
    return make_error("--fd {}: expected N=PATH or N=null (N the fd number the image recorded)", text);
  std::string num = text.substr(0, eq), path = text.substr(eq + 1);
  if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos)
    return make_error("--fd {}: '{}' is not an fd number", text, num);
  errno = 0;
  long fd = std::strtol(num.c_str(), nullptr, 10);
  if (errno != 0 || fd > (1 << 20))
    return make_error("--fd {}: fd {} is out of range (0-{})", text, num, 1 << 20);
  if (path.empty()) return make_error("--fd {}: no file after '=' (a path, or null for /dev/null)", text);
  return StandInSpec{static_cast<int>(fd), path == "null" ? std::string("/dev/null") : path, text};
}

Result<StandInResolver> StandInResolver::make(std::vector<StandInSpec> specs) {
  StandInResolver r;
  for (StandInSpec& s : specs) {
    for (const Given& g : r.given_)
      if (g.spec.fd == s.fd)
        return make_error("--fd {} given twice (--fd {} and --fd {})", s.fd, g.spec.text, s.text);
    r.given_.push_back(Given{std::move(s), UniqueFd(), false});
  }
  return r;
}

Result<int> StandInResolver::resolve(const FdImage& recorded) {
  for (Given& g : given_) {
    if (g.spec.fd != recorded.fd) continue;
    // The access mode the fd had; a writable stand-in is created if missing and appended to, so
    // that what was there is never overwritten.
    int acc = static_cast<int>(recorded.flags & O_ACCMODE);
    int flags = acc | O_CLOEXEC | O_NOCTTY;
    if (acc != O_RDONLY) flags |= O_CREAT | O_APPEND;
    g.file.reset(::open(g.spec.path.c_str(), flags, 0666));
    if (!g.file)
      return errno_error("--fd {}: cannot open {} {} (the stand-in for {})", g.spec.text, g.spec.path,
                         acc == O_RDONLY ? "for reading" : acc == O_WRONLY ? "for writing" : "for reading and writing",
                         describe_fd(recorded));
    g.used = true;
    return g.file.get();
  }
  return stdio_.resolve(recorded);
}

Status StandInResolver::finish(const std::vector<FdImage>& recorded) {
  for (const Given& g : given_) {
    if (g.used) continue;
    const FdImage* f = nullptr;
    for (const FdImage& r : recorded)
      if (r.fd == g.spec.fd) f = &r;
    if (f == nullptr) return make_error("--fd {}: the image has no fd {}", g.spec.text, g.spec.fd);
    return make_error("--fd {}: {} is restored by itself and takes no stand-in (only pipes to other "
                      "processes, ttys and sockets do)", g.spec.text, describe_fd(*f));
  }
  return ok_status();
}

}  // namespace osmo::ckpt
