// SPDX-License-Identifier: GPL-2.0-or-later
// The shepherd launcher (see launcher.hpp).
#include "run/launcher.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "base/fd_io.hpp"
#include "run/fd_util.hpp"
#include "run/shepherd.hpp"

namespace osmo::run {

namespace {

int thread_count() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return -1;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

// How long a job waits for the warm shepherd to finish preparing before it is started the cold
// way. Preparing takes about a millisecond; this bound only matters if something is badly wrong.
constexpr int kWarmReadyTimeoutMs = 2000;

// A shepherd forked ahead of time: it prepares the next job's namespaces and init and waits on
// its end of a SOCK_SEQPACKET pair. Closing ours makes an unused warm shepherd exit.
struct Warm {
  UniqueFd sock;
};

Warm spawn_warm(int launcher_sock) {
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) return {};
  const pid_t launcher = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(sp[0]);
    ::close(launcher_sock);
    ::setsid();
    ::signal(SIGCHLD, SIG_DFL);
    // Until it has a job, a warm shepherd must not outlive the launcher (which dies with the
    // daemon): its prepared namespaces belong to no one then. It clears this when a job arrives.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != launcher) ::_exit(0);  // the launcher died before the prctl
    ::prctl(PR_SET_NAME, "osmo-shepherd");
    ::_exit(warm_shepherd_main(sp[1]));
  }
  ::close(sp[1]);
  if (pid < 0) {
    ::close(sp[0]);
    return {};
  }
  return Warm{UniqueFd(sp[0])};
}

// Hands the job to the warm shepherd once it is ready. False: it failed, or is not ready in time.
bool hand_to_warm(Warm& warm, int stream_fd, int spec_fd) {
  if (!warm.sock.valid()) return false;
  const int rc = wait_readable(warm.sock.get(), kWarmReadyTimeoutMs);
  char ready = 0;
  if (rc != 1 || ::recv(warm.sock.get(), &ready, 1, MSG_DONTWAIT) != 1 || ready != 'R') return false;
  return send_job_request(warm.sock.get(), stream_fd, spec_fd).ok();
}

[[noreturn]] void launcher_main(int sock) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::prctl(PR_SET_NAME, "osmo-launcher");
  close_fds_except({sock});
  // Shepherds are reaped automatically; each restores SIGCHLD before it forks osmo init.
  ::signal(SIGCHLD, SIG_IGN);
  Warm warm = spawn_warm(sock);
  for (;;) {
    int fds[2];
    if (!recv_job_request(sock, fds)) ::_exit(0);
    int result = 0;
    if (fds[0] < 0 || fds[1] < 0) {
      result = EBADMSG;
    } else {
      const bool handed = hand_to_warm(warm, fds[0], fds[1]);
      warm = Warm{};  // used, or broken: either way it is never used again
      if (!handed) {
        // The cold way: a shepherd that prepares the job itself.
        const pid_t pid = ::fork();
        if (pid == 0) {
          ::close(sock);
          ::setsid();
          ::signal(SIGCHLD, SIG_DFL);
          ::prctl(PR_SET_NAME, "osmo-shepherd");
          ::_exit(shepherd_entry(fds[0], fds[1]));
        }
        if (pid < 0) result = errno;
      }
    }
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
    (void)!::send(sock, &result, sizeof result, MSG_NOSIGNAL);
    // The next job's shepherd, prepared after this job's answer, off its path.
    warm = spawn_warm(sock);
  }
}

}  // namespace

Result<std::unique_ptr<ShepherdLauncher>> ShepherdLauncher::start(Logger log) {
  const int threads = thread_count();
  if (threads != 1)
    return make_error("the daemon already runs {} threads; forking a launcher is unsafe", threads);
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
    return errno_error("socketpair for the shepherd launcher");
  UniqueFd mine(sp[0]), theirs(sp[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return errno_error("fork of the shepherd launcher");
  if (pid == 0) launcher_main(theirs.release());
  return std::unique_ptr<ShepherdLauncher>(new ShepherdLauncher(std::move(mine), pid, std::move(log)));
}

ShepherdLauncher::~ShepherdLauncher() {
  sock_.reset();  // the launcher sees EOF and exits; its shepherds keep running
  ::waitpid(pid_, nullptr, 0);
}

Status ShepherdLauncher::launch(int stream_fd, const JobSpec& spec) {
  UniqueFd memfd(::memfd_create("osmo-job-spec", MFD_CLOEXEC));
  if (!memfd.valid()) return errno_error("memfd_create for job {}", spec.id);
  OSMO_TRY(write_all(memfd.get(), to_json(spec).dump()));
  if (::lseek(memfd.get(), 0, SEEK_SET) != 0) return errno_error("lseek on job {} spec", spec.id);

  std::lock_guard lk(mu_);
  if (auto st = send_job_request(sock_.get(), stream_fd, memfd.get()); !st.ok())
    return Error{st.error().code, fmt::format("job {}: the shepherd launcher (pid {}) is gone", spec.id, pid_)};
  int result = 0;
  if (read_full(sock_.get(), &result, sizeof result).bytes != sizeof result)
    return make_error("job {}: the shepherd launcher (pid {}) did not answer", spec.id, pid_);
  if (result != 0) {
    errno = result;
    return errno_error("job {}: the shepherd launcher could not fork", spec.id);
  }
  return ok_status();
}

}  // namespace osmo::run
