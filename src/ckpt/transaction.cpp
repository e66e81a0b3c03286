// SPDX-License-Identifier: GPL-2.0-or-later
// The building blocks of a migration's transaction (ckpt.hpp): HeldProcess (the original, kept
// stopped after its image was written) and PendingRestore (the copy, restored but not yet let
// go). A migration holds both ends at once and decides which one lives:
//
//   source: checkpoint_and_hold ---- image over the peer stream ----> target: restore_held
//           ... target confirms it holds a complete copy; one side commits, the other kills;
//           on any failure before that: source resume(), target abort().
//
// Each object keeps an OwnerThread: a tracee belongs to the tracer *thread*, and PR_SET_PDEATHSIG
// to the thread that created the child, so the thread that did the first half is the only one
// that can do the second. Keeping that thread inside the object lets the holder call
// resume()/kill()/commit()/abort() from whichever thread it likes, and ties the held state's
// lifetime to the object (or to the whole process, should it die) instead of to some thread.
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <cstdint>
#include <optional>

#include "ckpt/held.hpp"
#include "ckpt/owner_thread.hpp"
#include "ckpt/phase_log.hpp"

namespace osmo::ckpt {

// ---- HeldProcess ----
struct HeldProcess::State {
  std::unique_ptr<OwnerThread> owner;
  std::optional<FrozenDump> frozen;  // created, used and destroyed on owner's thread only
  pid_t pid = -1;
  std::vector<pid_t> pids;
};

HeldProcess::HeldProcess(std::unique_ptr<State> s) : s_(std::move(s)) {}
HeldProcess::HeldProcess(HeldProcess&&) noexcept = default;
HeldProcess& HeldProcess::operator=(HeldProcess&& o) noexcept {
  if (this != &o) {
    if (s_ && s_->frozen) (void)resume();
    s_ = std::move(o.s_);
  }
  return *this;
}
HeldProcess::~HeldProcess() {
  if (!s_ || !s_->frozen) return;
  if (Status r = resume(); !r.ok())
    engine_log().warn("held pid={}: resume at release failed: {}", s_->pid, r.error().str());
}

pid_t HeldProcess::pid() const { return s_ ? s_->pid : -1; }
std::vector<pid_t> HeldProcess::pids() const { return s_ ? s_->pids : std::vector<pid_t>{}; }

Status HeldProcess::resume() {
  if (!s_ || !s_->frozen) return make_error("pid {} is no longer held", pid());
  Status r = s_->owner->run([&] {
    Status d = s_->frozen->detach_all();
    s_->frozen.reset();
    return d;
  });
  s_->owner.reset();
  if (!r.ok()) return Error{r.error().code, fmt::format("cannot resume held pid {}: {}", s_->pid, r.error().message)};
  return ok_status();
}

Status HeldProcess::kill() {
  if (!s_ || !s_->frozen) return make_error("pid {} is no longer held", pid());
  s_->owner->run([&] {
    // SIGKILL takes a process out of its ptrace stop straight to its exit: it does not return
    // to user space first.
    s_->frozen->kill_all();
    s_->frozen.reset();
    return 0;
  });
  s_->owner.reset();
  return ok_status();
}

Result<HeldProcess> checkpoint_and_hold(pid_t pid, int out_fd, const CheckpointOptions& options,
                                        CheckpointStats* stats) {
  auto t0 = std::chrono::steady_clock::now();
  auto fail = [&](const Error& e) {
    return Error{e.code, fmt::format("cannot checkpoint pid {}: {}", pid, e.message)};
  };
  auto owner = OwnerThread::start();
  if (!owner.ok()) return fail(owner.error());
  auto state = std::make_unique<HeldProcess::State>();
  state->owner = std::move(*owner);
  state->pid = pid;
  Status s = state->owner->run([&]() -> Status {
    OSMO_ASSIGN_OR_RETURN(FrozenDump f, dump_and_freeze(pid, out_fd, options, stats));
    if (stats != nullptr) {
      stats->freeze_ms = ms_since(f.frozen_at);
      stats->total_ms = ms_since(t0);
    }
    for (const Tracee& t : f.tracees) state->pids.push_back(t.pid());
    state->frozen.emplace(std::move(f));
    return ok_status();
  });
  if (!s.ok()) return fail(s.error());
  return HeldProcess(std::move(state));
}

// ---- PendingRestore ----
struct PendingRestore::State {
  std::unique_ptr<OwnerThread> owner;
  std::optional<HeldRestore> held;  // created, used and destroyed on owner's thread only
  RestoredProcess process;          // what process() shows
};

PendingRestore::PendingRestore(std::unique_ptr<State> s) : s_(std::move(s)) {}
PendingRestore::PendingRestore(PendingRestore&&) noexcept = default;
PendingRestore& PendingRestore::operator=(PendingRestore&& o) noexcept {
  if (this != &o) {
    abort();
    s_ = std::move(o.s_);
  }
  return *this;
}
PendingRestore::~PendingRestore() { abort(); }

const RestoredProcess& PendingRestore::process() const {
  static const RestoredProcess kNone;
  return s_ ? s_->process : kNone;
}

Status PendingRestore::commit() {
  if (!s_ || !s_->held) return make_error("cannot restore: there is no pending restore to commit");
  Status r = s_->owner->run([&] {
    Status c = commit_restore(*s_->held);
    if (c.ok()) {
      s_->process.total_ms = s_->held->info.total_ms;
      s_->process.pidfd = s_->held->pidfd.release();  // the caller's from now on
    } else {
      abort_restore(*s_->held);
      s_->process.pidfd = -1;
    }
    s_->held.reset();
    return c;
  });
  s_->owner.reset();
  if (!r.ok()) return Error{r.error().code, fmt::format("cannot restore: {}", r.error().message)};
  return ok_status();
}

void PendingRestore::abort() {
  if (!s_ || !s_->held) return;
  s_->owner->run([&] {
    abort_restore(*s_->held);
    s_->held.reset();
    return 0;
  });
  s_->process.pidfd = -1;
  s_->owner.reset();
}

Result<PendingRestore> restore_held(int in_fd, const RestoreOptions& options) {
  auto fail = [](const Error& e) { return Error{e.code, fmt::format("cannot restore: {}", e.message)}; };
  auto owner = OwnerThread::start();
  if (!owner.ok()) return fail(owner.error());
  auto state = std::make_unique<PendingRestore::State>();
  state->owner = std::move(*owner);
  Status s = state->owner->run([&]() -> Status {
    OSMO_ASSIGN_OR_RETURN(HeldRestore h, restore_until_commit(in_fd, options));
    state->process = h.info;
    state->process.pidfd = h.pidfd.get();
    state->held.emplace(std::move(h));
    return ok_status();
  });
  if (!s.ok()) return fail(s.error());
  return PendingRestore(std::move(state));
}

// ---- exit status ----
namespace {

// struct pidfd_info of <linux/pidfd.h> (Linux 6.13; PIDFD_INFO_EXIT 6.15), which Debian 12's
// headers lack; its first version, 64 bytes. The kernel accepts any size from this one up.
struct PidfdInfo {
  std::uint64_t mask;
  std::uint64_t cgroupid;
  std::uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  std::int32_t exit_code;
};
static_assert(sizeof(PidfdInfo) == 64);
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);
constexpr std::uint64_t kPidfdInfoExit = 1ull << 3;

}  // namespace

Result<int> restored_wait_status(int pidfd) {
  PidfdInfo info{};
  info.mask = kPidfdInfoExit;
  if (::ioctl(pidfd, kPidfdGetInfo, &info) != 0) {
    if (errno == ENOTTY || errno == EINVAL)
      return errno_error("this kernel cannot report a process's exit status through its pidfd (PIDFD_INFO_EXIT, "
                         "Linux 6.15); init's exit status says 128+N for signal N");
    if (errno == ESRCH) return errno_error("the restored process's exit status is not known yet (not reaped)");
    return errno_error("cannot read the exit status of the restored process from pidfd {}", pidfd);
  }
  if ((info.mask & kPidfdInfoExit) == 0)
    return make_error("the restored process has not ended yet (or has not been reaped by its init)");
  return info.exit_code;
}

}  // namespace osmo::ckpt
