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
  kStarted = 1,      // a = the job's pid inside its namespace; the exec succeeded
  kSetupFailed = 2,  // a = JobSetupStage, b = errno; nothing was executed
  kExecFailed = 3,   // b = errno of execvp; the shell convention gives 126/127
  kExited = 4,       // a = wait status of the job
  kReady = 5,        // the mount namespace and /proc are set up; init waits for the spec
};

enum class JobSetupStage : std::int32_t {
  kMountNs = 1, kProcMount, kFork, kRlimit, kGroups, kGid, kUid, kChdir, kSignals, kStdio, kSpec,
};
const char* to_string(JobSetupStage stage);

struct InitReport {
  InitReportKind kind{};
  std::int32_t a = 0;
  std::int32_t b = 0;
  std::int32_t c = 0;
};
static_assert(sizeof(InitReport) == 16);

// The spec travels from the shepherd to init on the control pipe, before any signal request: a
// u32 little-endian length, then that many bytes of JSON (to_json(JobSpec)).
inline constexpr std::uint32_t kMaxInitSpecBytes = 16u << 20;

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
};

// Runs in the child the shepherd forked into the new PID namespace: sets up, reports kReady,
// reads the spec from fds.control, starts the job and stays its init. Never returns.
[[noreturn]] void job_init_main(const InitFds& fds);

// Shepherd side: hands the spec to an init that reported kReady (blocking write).
Status send_init_spec(int control_fd, const JobSpec& spec);

}  // namespace osmo::run
