// SPDX-License-Identifier: GPL-2.0-or-later
// What a job is made of, as the home node captures it and the target node recreates it: command,
// environment, working directory, umask, resource limits and the caller's credentials. The
// credentials are filled in by the home daemon from SO_PEERCRED and /proc/<pid>/status, never
// taken from the client. Travels as JSON in the "job.start" peer request.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace osmo::run {

struct Rlimit {
  int resource = 0;
  std::uint64_t cur = 0;  // RLIM_INFINITY travels as UINT64_MAX, which it is on Linux
  std::uint64_t max = 0;
};

// The job's terminal (issue 12): set when `osmo run` was started from a terminal (or with -t).
// The shepherd then gives the job a pseudo-terminal with the caller's settings and window size;
// only the streams named here use it, the others stay pipes (`osmo run ls | wc -l`).
struct TtySpec {
  bool in = false, out = false, err = false;  // which of the job's stdin/stdout/stderr is the pty
  // The caller's termios (before `osmo run` put its terminal in raw mode), as struct termios.
  std::uint32_t iflag = 0, oflag = 0, cflag = 0, lflag = 0;
  std::vector<std::uint8_t> cc;  // c_cc, NCCS entries (fewer: the rest keep the pty's defaults)
  std::uint32_t ispeed = 0, ospeed = 0;  // B38400 style constants, as cfgetispeed returns them
  std::uint16_t rows = 24, cols = 80, xpixel = 0, ypixel = 0;
};

struct JobSpec {
  std::string id;       // cluster-wide job id
  std::string home;     // node whose `osmo run` anchors the job
  std::string node;     // node that runs it
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "NAME=value"
  std::string cwd;
  unsigned umask = 022;
  std::vector<Rlimit> rlimits;
  uid_t uid = 65534;
  gid_t gid = 65534;
  std::vector<gid_t> groups;
  std::string state_dir;  // where the node keeps job records (<state_dir>/jobs/<id>.json)
  // A secret the home daemon makes at run.start: a shepherd that attaches to the job's anchor
  // after a move proves with it that it holds the job's spec (job.attach, run_service.hpp).
  std::string attach_token;
  std::optional<TtySpec> tty;  // the job gets a pty (see TtySpec)
  // `osmo run --no-migrate`: the balancer never moves the job, `osmo migrate` only with --force.
  // Travels with the spec, so it holds on every node the job reaches.
  bool no_migrate = false;
  // Spreading (docs/spread.md). `no_spread`: `osmo run --no-spread`, the programs the job starts
  // stay on its node (no exec filter at all). `parent`: a sub-job's job (the job of the process
  // that exec'd it, whose deputy is its anchor), shown by `osmo ps --tree`. `exec_path`: the file
  // the deputy's caller asked to execute (absolute), when it differs from a PATH search of argv[0].
  bool no_spread = false;
  std::string parent;
  std::string exec_path;
};

nlohmann::json to_json(const JobSpec& spec);
Result<JobSpec> job_spec_from_json(const nlohmann::json& j);

// The parts an `osmo run` process sends about itself: argv (given), its environment, cwd, umask
// and all resource limits.
Result<JobSpec> capture_local_spec(std::vector<std::string> argv);

// The terminal settings and window size of `fd` (a terminal), for JobSpec::tty.
Result<TtySpec> capture_tty(int fd);

// The supplementary groups of process `pid` (from /proc/<pid>/status), for credentials the
// daemon takes from the kernel rather than the client.
Result<std::vector<gid_t>> read_process_groups(pid_t pid);

// "cat -n file" style one-line rendering of argv for listings.
std::string command_line(const std::vector<std::string>& argv);

// 128 random bits in hex, for JobSpec::attach_token.
Result<std::string> new_attach_token();

// A fresh random job id: 12 hex digits (48 bits; ids only need to be unique among live jobs).
std::string new_job_id();

}  // namespace osmo::run
