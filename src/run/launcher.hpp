// SPDX-License-Identifier: GPL-2.0-or-later
// Fast shepherd start-up for the daemon. Starting a shepherd with fork+exec from the daemon costs
// two forks of a multi-threaded process and a fresh start of the osmo binary (page faults are
// expensive here), which dominated the start latency of `osmo run`. Instead the daemon forks one
// single-threaded "launcher" while it is still single-threaded (at plugin installation); for each
// job the launcher receives the relay stream and a memfd with the spec (SCM_RIGHTS over a
// SOCK_SEQPACKET pair) and gives them to a shepherd without an exec (safe: the launcher has one
// thread): to the *warm* shepherd it forked ahead of time, which has already prepared the job's
// namespaces and osmo init (warm_shepherd_main, PreparedJob in shepherd.hpp), else to a shepherd
// it forks now. After answering the daemon it forks the next warm shepherd, off the job's path.
//
// Shepherds call setsid() and are the launcher's children, never the daemon's; the launcher dies
// with the daemon (PR_SET_PDEATHSIG), and shepherds running a job are then adopted by init and
// keep running, while an idle warm shepherd dies too (its own PR_SET_PDEATHSIG, cleared when it
// gets a job), and its init and namespaces with it. If the launcher is missing or broken,
// launch() falls back to spawn_shepherd() (fork + exec).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "base/log.hpp"
#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "run/job_spec.hpp"

namespace osmo::run {

class ShepherdLauncher {
 public:
  // Forks the launcher. Fails (and launch() uses the exec path) if the calling process already
  // has more than one thread: forking it would copy locks held by the other threads.
  static Result<std::unique_ptr<ShepherdLauncher>> start(Logger log);
  ~ShepherdLauncher();

  // Starts the shepherd of `spec` on a copy of `stream_fd` (the caller keeps its own).
  Status launch(int stream_fd, const JobSpec& spec);

  pid_t pid() const { return pid_; }

 private:
  ShepherdLauncher(UniqueFd sock, pid_t pid, Logger log) : sock_(std::move(sock)), pid_(pid), log_(std::move(log)) {}
  std::mutex mu_;  // one request/answer at a time
  UniqueFd sock_;
  pid_t pid_;
  Logger log_;
};

}  // namespace osmo::run
