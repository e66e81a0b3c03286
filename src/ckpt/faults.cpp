// SPDX-License-Identifier: GPL-2.0-or-later
// The table of fault points (documented in docs/engine.md) and the OSMO_FAULT check.
#include "ckpt/faults.hpp"

#include <string>

#include "base/fault.hpp"
#include "ckpt/ckpt.hpp"

namespace osmo::ckpt {

const std::vector<std::pair<std::string, std::string>>& fault_points() {
  static const std::vector<std::pair<std::string, std::string>> kPoints = {
      {"dump.after_seize", "the process is seized and stopped, nothing collected yet"},
      {"dump.regs", "collecting registers and xstate"},
      {"dump.mm", "collecting mm fields (brk injected)"},
      {"dump.signals", "collecting dispositions and pending signals (injected rt_sigaction)"},
      {"dump.fds", "collecting file descriptors"},
      {"dump.misc", "collecting timers, rseq, robust list, credentials"},
      {"dump.metadata", "metadata written, before blobs and pages"},
      {"dump.pages", "in the middle of streaming pages"},
      {"dump.before_end", "every page written, END section not yet written"},
      {"dump.held", "END written, the process put back and still stopped (checkpoint_and_hold's hold)"},
      {"restore.after_clone", "init and the new process exist, nothing restored"},
      {"restore.unmap", "the new process's own mappings removed"},
      {"restore.vdso", "vdso moved"},
      {"restore.mm", "image mappings created"},
      {"restore.uffd", "anonymous mappings registered with the new process's userfaultfd"},
      {"restore.pages", "in the middle of filling pages"},
      {"restore.mm_map", "before PR_SET_MM_MAP"},
      {"restore.signals", "before pending signals are queued"},
      {"restore.creds", "before credentials are set"},
      {"restore.regs", "before registers are installed"},
      {"restore.before_detach", "everything restored, process still stopped"},
      {"restore.commit", "commit: init no longer dies with the caller, the process not yet let go"},
  };
  return kPoints;
}

Status fault(const char* name) {
  if (fault_armed(name)) return make_error("fault injected at {} (OSMO_FAULT)", name);
  return ok_status();
}

}  // namespace osmo::ckpt
