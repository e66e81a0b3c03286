// SPDX-License-Identifier: GPL-2.0-or-later
// The two ways a shepherd reaches its job's processes (see job_host.hpp).
#include "run/job_host.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "platform/linux/pidfd.hpp"
#include "run/fd_util.hpp"
#include "run/frame.hpp"
#include "run/job_init.hpp"

namespace osmo::run {

InitHost::InitHost(UniqueFd report, UniqueFd control, pid_t init_pid, pid_t job_pid)
    : report_(std::move(report)), control_(std::move(control)), init_pid_(init_pid), job_pid_(job_pid) {
  if (control_.valid()) (void)set_nonblocking(control_.get(), true);
  if (report_.valid()) (void)set_nonblocking(report_.get(), true);
}

InitHost::~InitHost() { kill(); }

std::optional<int> InitHost::on_event() {
  InitReport r{};
  const ssize_t n = ::read(report_.get(), &r, sizeof r);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return std::nullopt;
  if (n == static_cast<ssize_t>(sizeof r) && r.kind == InitReportKind::kExited) return r.a;
  // EOF: init is gone. Without a report it was killed from outside (only SIGKILL can do that).
  report_.reset();
  int st = 0;
  if (init_pid_ > 0 && ::waitpid(init_pid_, &st, 0) == init_pid_) {
    init_pid_ = -1;
    return st;
  }
  return SIGKILL;
}

void InitHost::signal(int signo, bool group) {
  if (!control_.valid()) return;
  const InitSignalRequest req{signo, group ? kSignalToGroup : 0};
  // Best effort: init gone means the job is gone too.
  (void)!::write(control_.get(), &req, sizeof req);
}

void InitHost::kill() {
  if (init_pid_ <= 0) return;
  ::kill(init_pid_, SIGKILL);  // the whole PID namespace dies with its init
  ::waitpid(init_pid_, nullptr, 0);
  init_pid_ = -1;
}

PidfdHost::PidfdHost(pid_t init_pid, pid_t job_pid, UniqueFd job_pidfd)
    : init_pid_(init_pid), job_pid_(job_pid), job_pidfd_(std::move(job_pidfd)),
      init_pidfd_(platform::pidfd_open(init_pid)) {}

PidfdHost::~PidfdHost() { kill(); }

std::optional<int> PidfdHost::on_event() {
  int st = 0;
  const pid_t r = ::waitpid(init_pid_, &st, WNOHANG);
  if (r == 0) return std::nullopt;
  init_pidfd_.reset();
  init_pid_ = -1;
  if (r < 0) return SIGKILL;  // not our child after all: its status is lost
  // init exits with the job's status; a signal that killed init itself is the job's end.
  return WIFEXITED(st) ? WEXITSTATUS(st) << 8 : st;
}

void PidfdHost::signal(int signo, bool group) {
  if (!job_pidfd_.valid()) return;
  if (group) {
    if (platform::pidfd_signal(job_pidfd_.get(), signo, platform::kPidfdSignalProcessGroup) == 0) return;
    // An older kernel, or the job no longer leads its group: the group as the node sees it.
    if (errno == EINVAL && ::kill(-job_pid_, signo) == 0) return;
  }
  (void)platform::pidfd_signal(job_pidfd_.get(), signo);
}

void PidfdHost::kill() {
  if (init_pid_ <= 0) return;
  if (init_pidfd_.valid())
    (void)platform::pidfd_signal(init_pidfd_.get(), SIGKILL);
  else
    ::kill(init_pid_, SIGKILL);
  ::waitpid(init_pid_, nullptr, 0);
  init_pid_ = -1;
  init_pidfd_.reset();
}

}  // namespace osmo::run
