// SPDX-License-Identifier: GPL-2.0-or-later
// The shepherd's side of the handover of an exec-filter listener (see supervisor_link.hpp).
#include "spread/supervisor_link.hpp"

#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

#include "platform/linux/fd_passing.hpp"
#include "platform/linux/socket.hpp"

namespace osmo::spread {

std::filesystem::path supervisor_socket_path(const std::filesystem::path& state_dir) {
  return state_dir / "spread.sock";
}

Status hand_to_supervisor(const std::filesystem::path& state_dir, const JobWatch& watch, int listener) {
  const auto path = supervisor_socket_path(state_dir);
  UniqueFd s = platform::unix_connect(path.string(), SOCK_SEQPACKET);
  if (!s.valid()) return errno_error("job {}: cannot reach the spread supervisor at {}", watch.id, path.string());
  const std::string msg = nlohmann::json{{"id", watch.id},
                                         {"cookie", watch.cookie},
                                         {"init_pid", watch.init_pid},
                                         {"init_fd", watch.init_listener_fd}}
                              .dump();
  const int fds[1] = {listener};
  if (platform::send_with_fds(s.get(), msg.data(), msg.size(), fds) != static_cast<ssize_t>(msg.size()))
    return errno_error("job {}: cannot hand the exec listener to the spread supervisor", watch.id);
  // One byte back: taken. Bounded: a supervisor that does not answer within 2 s is not there.
  pollfd p{s.get(), POLLIN, 0};
  char ok = 0;
  if (::poll(&p, 1, 2000) != 1 || ::read(s.get(), &ok, 1) != 1 || ok != 'K')
    return make_error("job {}: the spread supervisor did not take the exec listener", watch.id);
  return ok_status();
}

void answer_all_stay(UniqueFd listener) {
  std::thread([l = std::move(listener)] {
    for (;;) {
      pollfd p{l.get(), POLLIN, 0};
      if (::poll(&p, 1, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if ((p.revents & POLLIN) == 0) return;  // POLLHUP: no process of the job is left
      seccomp_notif n{};
      if (::ioctl(l.get(), SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) {
        if (errno == EINTR || errno == ENOENT) continue;  // the caller died meanwhile
        return;
      }
      seccomp_notif_resp r{};
      r.id = n.id;
      r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      (void)::ioctl(l.get(), SECCOMP_IOCTL_NOTIF_SEND, &r);
    }
  }).detach();
}

}  // namespace osmo::spread
