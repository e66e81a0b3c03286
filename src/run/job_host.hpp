// SPDX-License-Identifier: GPL-2.0-or-later
// How a shepherd reaches the processes of its job: it signals the job, learns how it ended, and
// kills it when nothing may be left running. Two kinds:
//  - InitHost: a job the shepherd started with osmo init (job_init.hpp), which reports the job's
//    end on a pipe and delivers signals written to another;
//  - PidfdHost: a job whose processes the shepherd did not start (restored on this node by the
//    checkpoint engine after a move): its init is a child of the shepherd's process and exits
//    with the job's status, and signals go straight to the job through its pidfd.
// The relay (relay.hpp) uses either without knowing which.
#pragma once

#include <sys/types.h>

#include <optional>

#include "base/unique_fd.hpp"

namespace osmo::run {

class JobHost {
 public:
  virtual ~JobHost() = default;
  // The job's main process and its init, as this node sees them (<= 0: unknown or gone).
  virtual pid_t job_pid() const = 0;
  virtual pid_t init_pid() const = 0;
  // Readable when the job's fate may have changed (-1: nothing to watch any more).
  virtual int event_fd() const = 0;
  // Called when event_fd() is readable: the job's wait status once it has ended.
  virtual std::optional<int> on_event() = 0;
  // Best effort: a job that is gone ignores it. `group`: the job's whole process group.
  virtual void signal(int signo, bool group) = 0;
  // SIGKILLs init, which takes the job's whole PID namespace with it, and reaps it. Idempotent.
  virtual void kill() = 0;
};

// A job under osmo init, which the calling process forked (shepherd.cpp's launch_job).
class InitHost final : public JobHost {
 public:
  InitHost(UniqueFd report, UniqueFd control, pid_t init_pid, pid_t job_pid);
  ~InitHost() override;
  pid_t job_pid() const override { return job_pid_; }
  pid_t init_pid() const override { return init_pid_; }
  int event_fd() const override { return report_.get(); }
  std::optional<int> on_event() override;
  void signal(int signo, bool group) override;
  void kill() override;

 private:
  UniqueFd report_;   // init -> us: InitReport
  UniqueFd control_;  // us -> init: InitSignalRequest
  pid_t init_pid_;
  pid_t job_pid_;
};

// A job restored on this node: `init_pid` is a child of the calling process that exits with the
// job's status (its exit code, or 128+N if the job was killed by signal N: the status `osmo run`
// shows at home is the same either way); `job_pidfd` refers to the job's main process, the leader
// of its process group.
class PidfdHost final : public JobHost {
 public:
  PidfdHost(pid_t init_pid, pid_t job_pid, UniqueFd job_pidfd);
  ~PidfdHost() override;
  pid_t job_pid() const override { return job_pid_; }
  pid_t init_pid() const override { return init_pid_; }
  int event_fd() const override { return init_pidfd_.get(); }
  std::optional<int> on_event() override;
  void signal(int signo, bool group) override;
  void kill() override;

 private:
  pid_t init_pid_;
  pid_t job_pid_;
  UniqueFd job_pidfd_;
  UniqueFd init_pidfd_;  // readable once init has exited
};

}  // namespace osmo::run
