// SPDX-License-Identifier: GPL-2.0-or-later
// The rules that keep a program on the node of the process that execs it, whatever the load
// says, each with the reason the supervisor logs:
//   - the node's list of tiny programs (shells, coreutils-style tools): started remotely they
//     would cost more (a deputy, a remote start, ~5 ms) than they run. A program is matched by
//     the last component of the path it is exec'd by.
//   - setuid/setgid programs and programs with file capabilities: the remote start runs as the
//     caller's credentials by design, so the privilege would silently be lost.
//   - a caller whose fds would reach the program but cannot be relayed: the deputy relays fds 0,
//     1 and 2 (pipes, terminals, files, sockets, /dev/null: all read and written through the
//     deputy); any other fd that survives the exec (not close-on-exec) would be missing remotely.
// Checks that need only the path come first (tiny_program): they run on every exec, inside the
// 50 us budget of a decision to stay. The file and fd checks (why_not_movable) run only once the
// policy has chosen another node.
#pragma once

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace osmo::spread {

// The default list of programs that always stay (see docs/spread.md for the measurement): shells,
// and tools that usually run for well under the ~5 ms a remote start costs.
std::set<std::string, std::less<>> default_stay_local_programs();

// The list from a file (one program name per line, '#' comments), or the default if it does not
// exist.
std::set<std::string, std::less<>> load_stay_local_programs(const std::string& path);

// The last component of `path`.
std::string_view program_name(std::string_view path);

// Why the program at `path` (as exec'd by process `pid`: relative paths are relative to its cwd,
// absolute ones to its root) must stay, or nullopt. `resolved` gets the absolute path.
std::optional<std::string> file_stays(pid_t pid, const std::string& path, std::string* resolved);

// Why the fds of process `pid` keep its next program here, or nullopt.
std::optional<std::string> fds_stay(pid_t pid);

}  // namespace osmo::spread
