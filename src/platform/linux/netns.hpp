// SPDX-License-Identifier: GPL-2.0-or-later
// Named network namespaces, compatible with `ip netns`: a namespace NAME is kept alive by a bind
// mount of its nsfs inode at /run/netns/NAME. Creation and deletion drive iproute2 (which also
// sets up the shared mount of /run/netns exactly as every other tool expects); entering one is
// done here with setns(2), which affects only the calling thread.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace osmo::platform {

inline constexpr const char* kNetnsDir = "/run/netns";

std::string netns_path(const std::string& name);
bool netns_exists(const std::string& name);

// Fails if it already exists.
Status create_netns(const std::string& name);
// Idempotent: a missing namespace is not an error. Processes still inside keep the namespace
// itself alive (the kernel frees it with its last user), but it is no longer reachable by name.
Status delete_netns(const std::string& name);
// Names in /run/netns starting with `prefix`, sorted; an absent /run/netns is an empty list.
Result<std::vector<std::string>> list_netns(const std::string& prefix);

Result<UniqueFd> open_netns(const std::string& name);
// setns(fd, CLONE_NEWNET) for the calling thread.
Status enter_netns(int fd, const std::string& name_for_errors);

// Runs `ip -n NAME ARGS...` (or plain `ip ARGS...` when name is empty) and checks its status.
Status ip_in_netns(const std::string& name, const std::vector<std::string>& args);

}  // namespace osmo::platform
