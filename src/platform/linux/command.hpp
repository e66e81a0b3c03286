// SPDX-License-Identifier: GPL-2.0-or-later
// Runs an external program (such as `ip` from iproute2) to completion and reports its exit
// status and output. Used where the kernel interface is netlink and a few well-known commands
// are clearer than a netlink client of our own.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"

namespace osmo::platform {

struct CommandResult {
  int exit_status = -1;  // exit code; 128+N when killed by signal N
  std::string out;       // stdout and stderr, interleaved as written (bounded)
};

// Runs argv (argv[0] looked up in PATH) with stdin from /dev/null; fails only when the program
// cannot be started or waited for. Output beyond 64 KiB is dropped.
Result<CommandResult> run_command(const std::vector<std::string>& argv);

// Like run_command, but a non-zero exit is an error naming the command and quoting its output.
Status run_checked(const std::vector<std::string>& argv);

// "ip -n x link add ..." for messages.
std::string join_argv(const std::vector<std::string>& argv);

}  // namespace osmo::platform
