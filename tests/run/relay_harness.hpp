// SPDX-License-Identifier: GPL-2.0-or-later
// Test harness for the process side of `osmo run`: a shepherd on one end of a socketpair and an
// anchor on the other, each in a forked child (the test process stays single-threaded at fork
// time), with pipes for the anchor's stdin/stdout/stderr that the test drives.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "run/anchor.hpp"
#include "run/job_spec.hpp"

namespace osmo::run::testing {

struct JobRun {
  pid_t anchor = -1;
  pid_t shepherd = -1;
  int stdin_w = -1;   // the anchor's stdin (we write)
  int stdout_r = -1;  // the anchor's stdout (we read)
  int stderr_r = -1;
  std::string state_dir;
  int home_fd = -1;   // our end of the anchor's control connection (start_anchor_with_home)
};

// A spec for `argv` as the current user, with our environment, cwd "/", umask 022.
JobSpec make_spec(std::vector<std::string> argv, const std::string& state_dir);

// Starts shepherd + anchor. `verbose` makes the anchor print its job line on stderr.
// `prepared_ahead`: the shepherd prepares the job's namespaces and init first and gets the spec
// a little later, as a warm shepherd of the launcher does.
JobRun start_job(const JobSpec& spec, bool verbose = false, bool prepared_ahead = false);

// Like start_job, but the shepherd is started by `start_shepherd` on its end of the stream (which
// it must not keep), e.g. through a ShepherdLauncher; run.shepherd is then -1.
JobRun start_job_with(const JobSpec& spec, const std::function<void(int stream_fd)>& start_shepherd);

// Just the anchor, in a forked child, on `anchor_fd` (which it takes; `other_fd`, if >= 0, is
// closed in the child). Its control connection (AnchorOptions::control_fd) is a socketpair whose
// other end is run.home_fd: the test plays the home daemon there (route_attach).
JobRun start_anchor_with_home(const JobSpec& spec, int anchor_fd, int other_fd, AnchorOptions base);

// As the home daemon does for job.attach: passes one end of a new socketpair to the anchor on
// `home_fd` with the line {"attach": {...}}; returns the other end (the attaching shepherd's).
UniqueFd route_attach(int home_fd, const std::string& id, std::uint32_t epoch, const std::string& node);

struct Outcome {
  int code = -1;  // the anchor's exit status (what `osmo run` would return)
  std::string out, err;
};

// Writes `input` (then closes stdin), collects stdout/stderr to EOF, reaps both processes;
// `before_shepherd_reap` runs after the anchor has been reaped.
Outcome finish_job(JobRun& run, const std::string& input,
                   const std::function<void()>& before_shepherd_reap = {});

// start_job + finish_job.
Outcome run_job(const JobSpec& spec, const std::string& input = "");

// Reads from fd until `needle` has been seen (or EOF / 10 s); returns what was read.
std::string read_until(int fd, const std::string& needle);

// A fresh temp directory removed by the destructor.
struct TempDir {
  TempDir();
  ~TempDir();
  std::string path;
};

}  // namespace osmo::run::testing
