// SPDX-License-Identifier: GPL-2.0-or-later
// osmo init: PID 1 of a job's own PID namespace. The shepherd forks it after unsharing the PID and
// time namespaces; init unshares a mount namespace with its own /proc (so the job's getpid() and
// /proc/self agree), forks the job (PID 2, so the kernel's default signal actions apply to it,
// which they would not to a PID 1), reaps every orphan in the namespace, delivers the signals the
// shepherd asks for, and reports to the shepherd how the job started and how it ended. When the
// job ends, init exits too and the kernel kills whatever the job left behind in its namespace.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "run/job_spec.hpp"

namespace osmo::run {

// Fixed-size reports init writes to the shepherd (one write each, atomic on a pipe).
enum class InitReportKind : std::int32_t {
  kStarted = 1,      // a = the job's pid inside its namespace; the exec succeeded; c = init's
                     // fd of the exec filter's listener (kLaunchSpread), else -1
  kSetupFailed = 2,  // a = JobSetupStage, b = errno; nothing was executed
  kExecFailed = 3,   // b = errno of execvp; the shell convention gives 126/127
  kExited = 4,       // a = wait status of the job
  kReady = 5,        // the mount namespace and /proc are set up; init waits for the spec
};

enum class JobSetupStage : std::int32_t {
  kMountNs = 1, kProcMount, kFork, kRlimit, kGroups, kGid, kUid, kChdir, kSignals, kStdio, kSpec, kTty,
  kUserNs,
};
const char* to_string(JobSetupStage stage);

struct InitReport {
  InitReportKind kind{};
  std::int32_t a = 0;
  std::int32_t b = 0;
  std::int32_t c = 0;
};
static_assert(sizeof(InitReport) == 16);

// The spec travels from the shepherd to init on the control pipe, before any signal request, as
// one flat "launch block" (both ends are the same binary, so host layout is fine): this header,
// `nrlimits` LaunchRlimit, `ngroups` u32 gids, then NUL-terminated strings: cwd, the `argc`
// arguments, the `envc` environment entries. Flat, so that init parses nothing and allocates
// nothing between the spec's arrival and the job's exec (each fresh page costs a fault).
struct LaunchBlockHeader {
  std::uint32_t magic = 0;  // kLaunchBlockMagic
  std::uint32_t bytes = 0;  // the whole block, this header included
  std::uint32_t umask = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t ngroups = 0;
  std::uint32_t nrlimits = 0;
  std::uint32_t argc = 0;
  std::uint32_t envc = 0;
  std::uint32_t flags = 0;  // kLaunchSpread, kLaunchExecPath
  // The job's terminal (job_pty.hpp): which of fds 0, 1, 2 are /dev/pts/<tty_index> (kTtyStdin,
  // ...); 0: no terminal, all three are pipes. With a terminal the job starts a session of its own
  // whose controlling terminal it is.
  std::uint32_t tty_streams = 0;
  std::uint32_t tty_index = 0;
  // kLaunchSpread: init installs the exec filter (src/spread/exec_filter.hpp) with this bypass
  // cookie before it clones the job, and reports the listener's fd number in kStarted's `c`.
  std::uint64_t spread_cookie = 0;
};
static_assert(sizeof(LaunchBlockHeader) == 56);
// kLaunchExecPath: one more string after cwd, the file to execute (JobSpec::exec_path) instead
// of a PATH search for argv[0].
inline constexpr std::uint32_t kLaunchSpread = 1, kLaunchExecPath = 2;
inline constexpr std::uint32_t kTtyStdin = 1, kTtyStdout = 2, kTtyStderr = 4;
struct LaunchRlimit {
  std::int32_t resource = 0;
  std::uint32_t reserved = 0;
  std::uint64_t cur = 0;
  std::uint64_t max = 0;
};
static_assert(sizeof(LaunchRlimit) == 24);
inline constexpr std::uint32_t kLaunchBlockMagic = 0x4e4c534f;  // "OSLN"
inline constexpr std::uint32_t kMaxLaunchBlockBytes = 16u << 20;

// The launch block for `spec` (fails if it would exceed kMaxLaunchBlockBytes); `tty_index` is the
// number of the job's pty when spec.tty is set.
// `spread_cookie` != 0: the job spreads (kLaunchSpread) with that cookie.
Result<std::string> encode_launch_block(const JobSpec& spec, int tty_index = -1, std::uint64_t spread_cookie = 0);

// Requests from the shepherd to init (one write each), after the spec.
struct InitSignalRequest {
  std::int32_t signo = 0;
  std::uint32_t flags = 0;  // kSignalToGroup: the job's whole process group
};
static_assert(sizeof(InitSignalRequest) == 8);

// The fds init is handed; init closes every other fd it inherited.
struct InitFds {
  int job_stdin = -1;   // read end the job gets as fd 0
  int job_stdout = -1;  // write end, fd 1
  int job_stderr = -1;  // write end, fd 2
  int report = -1;      // init -> shepherd reports
  int control = -1;     // shepherd -> init: the spec, then signal requests; EOF: shepherd gone
  // Without root (platform/linux/user_ns.hpp): init was cloned into a user namespace of its own
  // and maps these ids (the daemon's, captured before the clone) to themselves first; -1: root.
  int map_uid = -1;
  int map_gid = -1;
};

// Runs in the child the shepherd forked into the new PID namespace: sets up, reports kReady,
// reads the spec from fds.control, starts the job and stays its init. Never returns.
[[noreturn]] void job_init_main(const InitFds& fds);

// Shepherd side: hands the launch block to an init that reported kReady (blocking write).
Status send_launch_block(int control_fd, const std::string& block);

}  // namespace osmo::run
