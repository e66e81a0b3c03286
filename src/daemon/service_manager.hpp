// SPDX-License-Identifier: GPL-2.0-or-later
// Telling a service manager (systemd, `Type=notify`) where osmod is in its life: ready once the
// gossip socket, the peer listener and the control socket are up, stopping when it starts to leave.
#pragma once

#include <string_view>

#include "base/result.hpp"

namespace osmo::daemon {

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...", newline-separated) to the socket named by
// $NOTIFY_SOCKET, as sd_notify(3) does. Without $NOTIFY_SOCKET (not started by systemd, or a unit
// that is not Type=notify) it does nothing and succeeds. The first call takes the variable out of
// the environment so that no job the daemon starts inherits it.
Status notify_service_manager(std::string_view state);

}  // namespace osmo::daemon
