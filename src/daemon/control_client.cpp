// SPDX-License-Identifier: GPL-2.0-or-later
// Line-oriented control protocol with SCM_RIGHTS fd passing, client and shared helpers.
#include "daemon/control_client.hpp"

#include <poll.h>

#include <chrono>
#include <optional>

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "platform/linux/fd_passing.hpp"
#include "platform/linux/socket.hpp"

namespace osmo::daemon {
namespace {
constexpr std::size_t kMaxResponseBytes = 64 << 20;  // `osmo ps` of a big cluster fits easily
}  // namespace

Status send_line(int fd, const std::string& line, std::span<const int> fds) {
  if (fds.size() > platform::kMaxFdsPerMessage) return make_error("too many fds to pass ({})", fds.size());
  std::string data = line;
  data.push_back('\n');
  std::size_t off = 0;
  bool fds_sent = fds.empty();
  while (off < data.size()) {
    // The fds ride on the first sendmsg: a short send leaves only bytes for the next ones.
    const ssize_t n = platform::send_with_fds(fd, data.data() + off, data.size() - off,
                                              fds_sent ? std::span<const int>() : fds);
    if (n < 0) return errno_error("control socket: send");
    fds_sent = true;
    off += static_cast<std::size_t>(n);
  }
  return ok_status();
}

Result<std::string> recv_line(int fd, std::string& pending, std::vector<UniqueFd>* fds,
                              std::size_t max_bytes, int line_deadline_ms) {
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> deadline;
  for (;;) {
    if (line_deadline_ms > 0 && !pending.empty() && !deadline)
      deadline = Clock::now() + std::chrono::milliseconds(line_deadline_ms);
    auto nl = pending.find('\n');
    if (nl != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      return line;
    }
    if (pending.size() > max_bytes) return make_error("control socket: line longer than {} bytes", max_bytes);
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      pollfd p{fd, POLLIN, 0};
      const int rc = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
      if (rc < 0 && errno == EINTR) continue;
      if (rc == 0)
        return Error{ETIMEDOUT, fmt::format("control socket: request not complete within {} ms", line_deadline_ms)};
    }
    char buf[65536];
    // Fds we did not ask for are closed rather than leaked (the kernel does it: no fds accepted).
    platform::ReceivedFds passed;
    const ssize_t n = platform::recv_with_fds(fd, buf, sizeof buf, fds != nullptr ? &passed : nullptr);
    if (n < 0) return errno_error("control socket: receive");
    for (std::size_t i = 0; i < passed.count; ++i) fds->push_back(passed.take(i));
    if (n == 0) {
      if (!pending.empty()) return make_error("control socket: connection closed mid-line");
      return std::string();
    }
    pending.append(buf, static_cast<std::size_t>(n));
  }
}

Result<ControlClient> ControlClient::connect(const std::string& socket_path) {
  UniqueFd fd = platform::unix_connect(socket_path, SOCK_STREAM);
  if (!fd && errno == ENAMETOOLONG) return make_error("control socket path too long: {}", socket_path);
  if (!fd) {
    int e = errno;
    // Each cause gets the advice that fits it: a missing daemon is not a permission problem.
    if (e == EACCES || e == EPERM)
      return Error{e, fmt::format("no permission to talk to the osmo daemon at {} (the socket is "
                                  "mode 0666 unless changed; check the directory's permissions, or "
                                  "run as a user that may open it)",
                                  socket_path)};
    if (e == ECONNREFUSED)
      return Error{e, fmt::format("the osmo daemon at {} is not running (the socket is left from an "
                                  "earlier one; start `osmo daemon`, or `systemctl start osmod`)",
                                  socket_path)};
    return Error{e, fmt::format("cannot reach the osmo daemon at {} (is `osmo daemon` running? "
                                "set --socket or OSMO_SOCKET)",
                                socket_path)};
  }
  return ControlClient(std::move(fd));
}

Result<nlohmann::json> ControlClient::call(const nlohmann::json& request, std::span<const int> fds,
                                           std::vector<UniqueFd>* fds_out) {
  OSMO_TRY(send_line(fd_.get(), request.dump(), fds));
  OSMO_ASSIGN_OR_RETURN(std::string line, recv_line(fd_.get(), pending_, fds_out, kMaxResponseBytes));
  if (line.empty()) return make_error("the osmo daemon closed the control connection");
  nlohmann::json response = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (response.is_discarded() || !response.is_object())
    return make_error("the osmo daemon sent a malformed response");
  if (!response.value("ok", false))
    return make_error("{}", response.value("error", std::string("request failed")));
  return response;
}

Result<nlohmann::json> call_local(const std::string& socket_path, const nlohmann::json& request) {
  OSMO_ASSIGN_OR_RETURN(ControlClient client, ControlClient::connect(socket_path));
  return client.call(request);
}

}  // namespace osmo::daemon
