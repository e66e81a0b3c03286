// The shepherd: one process per job on the node that runs it. It is started by the daemon with a
// double fork and a fresh exec of the osmo binary (`osmo __job-shepherd`), so it is neither a
// child of the daemon nor a copy of the daemon's threads, and a daemon restart leaves it alone.
// It creates the job's namespaces and osmo init (job_init.hpp), records the job on disk
// (job_table.hpp), relays stdin/stdout/stderr, signals and the exit status over the relay stream
// (frame.hpp), and kills the job if the stream to its anchor breaks.
#pragma once

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "run/job_spec.hpp"

namespace osmo::run {

// Runs the job to its end. Returns the shepherd's own exit status (0 = the stream ended cleanly).
int shepherd_main(UniqueFd stream, const JobSpec& spec);

// `osmo __job-shepherd STREAM_FD SPEC_FD`: reads the JSON spec from SPEC_FD, then shepherd_main.
int shepherd_entry(int stream_fd, int spec_fd);

// Daemon side: starts a detached shepherd (double fork, setsid, exec of `exe`) that gets a copy
// of `stream_fd` (the caller keeps and closes its own; on failure it can still report on it).
// Safe to call from a multi-threaded process: only async-signal-safe calls run between fork and
// exec. Returns once the intermediate child has been reaped.
Status spawn_shepherd(const std::string& exe, int stream_fd, const JobSpec& spec);

}  // namespace osmo::run
