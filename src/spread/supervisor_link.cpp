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
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "platform/linux/fd_passing.hpp"
#include "platform/linux/socket.hpp"

namespace osmo::spread {

std::filesystem::path supervisor_socket_path(const std::filesystem::path& state_dir) {
  return state_dir / "spread.sock";
}

Result<UniqueFd> hand_to_supervisor(const std::filesystem::path& state_dir, const JobWatch& watch, int listener) {
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
  return s;
}

namespace {

// Answers one pending notification "continue". False if the listener is gone.
bool answer_one_stay(int listener) {
  seccomp_notif n{};
  if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) return errno == EINTR || errno == ENOENT;
  seccomp_notif_resp r{};
  r.id = n.id;
  r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  (void)::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
  return true;
}

}  // namespace

void keep_supervised(std::filesystem::path state_dir, JobWatch watch, UniqueFd listener) {
  std::thread([dir = std::move(state_dir), w = std::move(watch), l = std::move(listener)] {
    for (;;) {
      auto conn = hand_to_supervisor(dir, w, l.get());
      if (conn.ok()) {
        // Supervised: wait for the supervisor's end (daemon gone) or the job's (listener hung up).
        pollfd p[2] = {{conn->get(), POLLIN, 0}, {l.get(), 0, 0}};
        while (::poll(p, 2, -1) < 0 && errno == EINTR) {
        }
        if ((p[1].revents & (POLLHUP | POLLERR)) != 0) return;
        continue;  // the daemon is gone: answer ourselves until a new one takes it
      }
      // Unsupervised for a second: every exec stays.
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
        if (left <= 0) break;
        pollfd p{l.get(), POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno != EINTR) return;
        if (r <= 0) continue;
        if ((p.revents & POLLIN) != 0) {
          if (!answer_one_stay(l.get())) return;
        } else if ((p.revents & (POLLHUP | POLLERR)) != 0) {
          return;  // no process of the job is left
        }
      }
    }
  }).detach();
}

}  // namespace osmo::spread
