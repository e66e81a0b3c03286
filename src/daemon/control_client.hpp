// SPDX-License-Identifier: GPL-2.0-or-later
// Client side of the control socket, used by every `osmo` command that talks to the local daemon.
// Protocol: one JSON object per line each way; fds travel as SCM_RIGHTS on the same sendmsg as
// the line that refers to them (docs/protocol.md, "Control socket").
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace osmo::daemon {

class ControlClient {
 public:
  // Fails with a message that names the socket and suggests how to start a daemon.
  static Result<ControlClient> connect(const std::string& socket_path);

  // Sends one request and waits for its response. A response with "ok": false becomes an Error
  // carrying the daemon's message. Fds passed by the daemon are appended to *fds_out.
  Result<nlohmann::json> call(const nlohmann::json& request, std::span<const int> fds = {},
                              std::vector<UniqueFd>* fds_out = nullptr);

  int fd() const { return fd_.get(); }
  UniqueFd release() { return std::move(fd_); }

 private:
  explicit ControlClient(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string pending_;  // bytes received past the last line
};

// One request to the local daemon on a connection of its own: what most commands need.
Result<nlohmann::json> call_local(const std::string& socket_path, const nlohmann::json& request);

// Line I/O with fd passing, shared by client and server.
Status send_line(int fd, const std::string& line, std::span<const int> fds);
// Reads one '\n'-terminated line (max_bytes bound), collecting passed fds. Empty result = EOF.
// line_deadline_ms > 0: once the line's first byte is in, the whole line must come within that
// time (one deadline, not per read: a sender trickling bytes is cut off); waiting for a first
// byte is not bounded.
Result<std::string> recv_line(int fd, std::string& pending, std::vector<UniqueFd>* fds,
                              std::size_t max_bytes, int line_deadline_ms = 0);

}  // namespace osmo::daemon
