// SPDX-License-Identifier: GPL-2.0-or-later
// Tracking the writes of a process that keeps running (pre-copy, docs/migration.md): the process
// is seized for the few injected system calls that give it a write-protecting userfaultfd
// (dirty_pages.hpp, open_tracking_uffd), its private writable mappings are registered while it
// is stopped (a mapping that changed in between would fail the registration), and it is put
// back exactly as it was (registers with an interrupted call set to restart, signal mask,
// signals taken off it while stopping sent again) and let go. From then on the tracker reports
// what it writes, round after round.
#include <cstdint>
#include <vector>

#include "ckpt/dirty_pages.hpp"
#include "ckpt/kinds.hpp"
#include "ckpt/proc.hpp"
#include "ckpt/ptrace.hpp"

namespace osmo::ckpt {

Result<DirtyTracker> track_running_process(pid_t pid) {
  std::vector<siginfo_t> stolen;
  OSMO_ASSIGN_OR_RETURN(Tracee t, Tracee::seize_and_stop(pid, Tracee::OnRelease::kDetach, false, &stolen));
  for (const siginfo_t& si : stolen) t.defer_signal(si);
  OSMO_ASSIGN_OR_RETURN(user_regs_struct regs, t.get_regs());
  OSMO_ASSIGN_OR_RETURN(std::uint64_t mask, t.get_sigmask());
  auto work = [&]() -> Result<DirtyTracker> {
    OSMO_ASSIGN_OR_RETURN(std::vector<MapsEntry> maps, read_maps(pid));
    OSMO_ASSIGN_OR_RETURN(std::uint64_t gate, find_syscall_insn(t, maps));
    t.set_gate(gate, GateKind::kSyscallStops);
    OSMO_TRY(t.set_sigmask(~0ull));  // no handler may run inside our calls
    OSMO_ASSIGN_OR_RETURN(UniqueFd uffd, open_tracking_uffd(pid, [&](long nr, const std::array<std::uint64_t, 6>& a) {
                            return t.syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                          }));
    std::vector<PageRange> ranges;
    for (const MapsEntry& e : maps)
      if (e.w && !e.shared) ranges.push_back({e.start, e.end});
    return DirtyTracker::start(pid, std::move(uffd), std::move(ranges));
  };
  auto tracker = work();
  // Put back whatever happened: registers (an interrupted call restarts), mask, then let go.
  Status back = t.set_regs(with_syscall_restart(regs));
  if (Status s = t.set_sigmask(mask); back.ok()) back = s;
  if (Status s = t.detach(); back.ok()) back = s;
  if (!tracker.ok()) return make_error("cannot track the writes of pid {}: {}", pid, tracker.error().str());
  if (!back.ok()) return make_error("cannot let pid {} go after arming its write tracking: {}", pid, back.error().str());
  return tracker;
}

}  // namespace osmo::ckpt
