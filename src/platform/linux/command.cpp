// SPDX-License-Identifier: GPL-2.0-or-later
// Running external programs to completion (see command.hpp).
#include "platform/linux/command.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/unique_fd.hpp"
#include "platform/linux/sysfs_io.hpp"

extern char** environ;

namespace osmo::platform {
namespace {
constexpr std::size_t kMaxOutputBytes = 64 * 1024;
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

Result<CommandResult> run_command(const std::vector<std::string>& argv) {
  if (argv.empty()) return make_error("run_command: empty argv");
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe for '{}'", join_argv(argv));
  UniqueFd rd(p[0]), wr(p[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    errno = rc;
    return errno_error("start '{}'", join_argv(argv));
  }
  wr.reset();

  CommandResult res;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (res.out.size() < kMaxOutputBytes) res.out.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno_error("waitpid {} for '{}'", pid, join_argv(argv));
  }
  res.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return res;
}

Status run_checked(const std::vector<std::string>& argv) {
  OSMO_ASSIGN_OR_RETURN(CommandResult r, run_command(argv));
  if (r.exit_status != 0)
    return make_error("'{}' exited with status {}: {}", join_argv(argv), r.exit_status,
                      trim(r.out));
  return ok_status();
}

}  // namespace osmo::platform
