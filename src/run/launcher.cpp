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

// Receives one request: a byte and two fds (stream, spec memfd). 0 = the daemon is gone.
int recv_request(int sock, int fds[2]) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  fds[0] = fds[1] = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(2 * sizeof(int)))
      std::memcpy(fds, CMSG_DATA(c), 2 * sizeof(int));
  }
  return 1;
}

[[noreturn]] void launcher_main(int sock) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::prctl(PR_SET_NAME, "osmo-launcher");
  close_fds_except({sock});
  // Shepherds are reaped automatically; each restores SIGCHLD before it forks osmo init.
  ::signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int fds[2];
    if (recv_request(sock, fds) == 0) ::_exit(0);
    int result = 0;
    if (fds[0] < 0 || fds[1] < 0) {
      result = EBADMSG;
    } else {
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
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
    (void)!::send(sock, &result, sizeof result, MSG_NOSIGNAL);
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
  const int fds[2] = {stream_fd, memfd.get()};
  char byte = 'J';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  std::memcpy(CMSG_DATA(c), fds, sizeof fds);
  if (::sendmsg(sock_.get(), &msg, MSG_NOSIGNAL) != 1)
    return errno_error("job {}: the shepherd launcher (pid {}) is gone", spec.id, pid_);
  int result = 0;
  ssize_t n;
  do n = ::recv(sock_.get(), &result, sizeof result, 0);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof result))
    return make_error("job {}: the shepherd launcher (pid {}) did not answer", spec.id, pid_);
  if (result != 0) {
    errno = result;
    return errno_error("job {}: the shepherd launcher could not fork", spec.id);
  }
  return ok_status();
}

}  // namespace osmo::run
