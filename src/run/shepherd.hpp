// SPDX-License-Identifier: GPL-2.0-or-later
// The shepherd: one process per job on the node that runs it, never a child of the daemon, so a
// daemon restart leaves it alone. The daemon's launcher (launcher.hpp) forks it, usually ahead of
// time ("warm": it has already prepared the job's namespaces and osmo init and waits for a job);
// without the launcher the daemon starts it with a double fork and an exec of the osmo binary
// (`osmo __job-shepherd`). It owns the job's namespaces and osmo init (job_init.hpp), records the
// job on disk (job_table.hpp), relays stdin/stdout/stderr, signals and the exit status over the
// relay stream (relay.hpp), and kills the job if the stream to its anchor breaks.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "run/job_host.hpp"
#include "run/job_spec.hpp"
#include "run/relay.hpp"

namespace osmo::run {

// What a job needs before its spec is known: its pipes, and an osmo init that has entered fresh
// PID and time namespaces (the calling process unshares them for its next child, which the kernel
// allows once per process), made its own mount namespace and /proc, and waits for the spec.
// It serves exactly one job; destroying it unused SIGKILLs init, which ends its namespaces.
struct PreparedJob {
  static Result<PreparedJob> create();
  PreparedJob() = default;
  PreparedJob(PreparedJob&& o) noexcept;
  PreparedJob& operator=(PreparedJob&& o) noexcept;
  ~PreparedJob();

  UniqueFd job_in;   // write end of the job's stdin
  UniqueFd job_out;  // read end of its stdout
  UniqueFd job_err;  // read end of its stderr
  UniqueFd report;   // init -> shepherd (InitReport)
  UniqueFd control;  // shepherd -> init (the spec, then signal requests)
  pid_t init_pid = -1;
};

// A job started by the calling process under osmo init.
struct LaunchedJob {
  JobPipes pipes;
  std::unique_ptr<InitHost> host;
  std::optional<int> exec_failed_status;  // the exec failed: the wait status 126/127 stand for
  std::string notice;                     // ... and the line saying why
  int tty_index = -1;                     // the job's pty is /dev/pts/<tty_index> (spec.tty)
  // The job spreads (docs/spread.md): the exec filter's listener (a copy of init's, already given
  // to spread::keep_supervised by launch_job) and cookie.
  UniqueFd spread_listener;
  std::uint64_t spread_cookie = 0;
  int init_listener_fd = -1;
};
// Starts the job of `spec` in `prepared` (else in a job it prepares): checks that the user exists,
// hands init the launch block and waits for its report. An error means nothing runs.
Result<LaunchedJob> launch_job(const JobSpec& spec, std::optional<PreparedJob> prepared);

// Runs the job to its end, in `prepared` if given (else it prepares one itself). Returns the
// shepherd's own exit status (0 = the stream ended cleanly).
int shepherd_main(UniqueFd stream, const JobSpec& spec,
                  std::optional<PreparedJob> prepared = std::nullopt);

// A job whose processes exist already on this node (restored by the checkpoint engine after a
// move), for adopt_shepherd_main.
struct AdoptedJob {
  // How to reach it: for a restored job a PidfdHost (its init must be a child of the calling
  // process). Killed when the relay ends other than cleanly.
  std::unique_ptr<JobHost> host;
  JobPipes pipes;                   // our ends of the pipes the job now has as stdin/stdout/stderr
  int migrations = 0;               // moves so far, this one included (shown by `osmo ps`)
  std::int64_t started_unix_ms = 0;  // when the job first started (0: now)
  int tty_index = -1;                // its pty here is /dev/pts/<tty_index> (pipes.tty), if it has one
};

// The target side of a move: runs a shepherd for `job` in the calling process until the job's
// end. `dial_home` returns a stream to the home daemon's `job.attach` service (dial_job_attach in
// run_service.hpp; a test routes it itself). The shepherd sends `attach` for `state.epoch` with the
// offsets in `state` and waits for the anchor's answer. `attached`: it pre-fills the job's stdin
// with state.unconsumed_stdin() (closing it after if state.stdin_ended), writes the job record
// (spec.node, `migrations`), opens its control endpoint, delivers state.held_signals, runs
// `on_attached` (the migration code lets the job run there; an error kills it and the anchor
// reports the job lost) and relays like any shepherd until the job exits: the exit status is
// init's (PidfdHost). `rejected` (or no home): it kills the job and returns 1.
// Returns 0 when the job's end reached home, or when it was cleanly superseded.
int adopt_shepherd_main(const std::function<Result<UniqueFd>()>& dial_home, const JobSpec& spec,
                        AdoptedJob job, const HandoffState& state, std::function<Status()> on_attached);

// `osmo __job-shepherd STREAM_FD SPEC_FD`: reads the JSON spec from SPEC_FD, then shepherd_main.
int shepherd_entry(int stream_fd, int spec_fd);

// A warm shepherd, forked by the launcher with `sock` (SOCK_SEQPACKET) as its line to it: prepares
// a job, sends one byte 'R' when ready, waits for one job request (send_job_request) and runs
// it. If the launcher closes `sock` first, it returns 0 and the prepared namespaces die with it.
// Returns the shepherd's exit status.
int warm_shepherd_main(int sock);

// A job request on a SOCK_SEQPACKET socket: one byte and two fds (the relay stream, a memfd with
// the JSON spec). recv_job_request returns false on EOF; missing fds come back as -1.
Status send_job_request(int sock, int stream_fd, int spec_fd);
bool recv_job_request(int sock, int fds[2]);

// Daemon side: starts a detached shepherd (double fork, setsid, exec of `exe`) that gets a copy
// of `stream_fd` (the caller keeps and closes its own; on failure it can still report on it).
// Safe to call from a multi-threaded process: only async-signal-safe calls run between fork and
// exec. Returns once the intermediate child has been reaped.
Status spawn_shepherd(const std::string& exe, int stream_fd, const JobSpec& spec);

}  // namespace osmo::run
