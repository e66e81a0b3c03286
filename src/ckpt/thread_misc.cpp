// SPDX-License-Identifier: GPL-2.0-or-later
// Per-thread registrations the kernel keeps pointers for: rseq (PTRACE_GET_RSEQ_CONFIGURATION),
// the robust futex list (get_robust_list works on another process), and the clear-child-tid
// address (injected PR_GET_TID_ADDRESS). All three are re-registered by injected syscalls once
// the memory they point into exists again. The new process starts with glibc's own rseq
// registration (inherited from the restorer), which is removed before its memory goes.
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ckpt/kinds.hpp"

namespace osmo::ckpt {

Status thread_dump(DumpContext& c) {
  ThreadMiscImage& t = c.img->thread;
  OSMO_ASSIGN_OR_RETURN(RseqConfig rc, get_rseq_config(c.pid));
  t.rseq_addr = rc.rseq_abi_pointer;
  t.rseq_len = rc.rseq_abi_size;
  t.rseq_sig = rc.signature;
  void* head = nullptr;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, c.pid, &head, &len) != 0)
    return errno_error("cannot read the robust futex list of pid {}", c.pid);
  t.robust_list = reinterpret_cast<std::uint64_t>(head);
  t.robust_len = len;
  OSMO_TRY(c.tracee->syscall_ok("prctl(PR_GET_TID_ADDRESS)", SYS_prctl, PR_GET_TID_ADDRESS, c.scratch_data()));
  OSMO_TRY(c.tracee->read_mem(c.scratch_data(), &t.clear_tid, sizeof t.clear_tid));
  return ok_status();
}

void thread_encode(const ProcessImage& img, Encoder& e) {
  const ThreadMiscImage& t = img.thread;
  e.u64(t.rseq_addr);
  e.u32(t.rseq_len);
  e.u32(t.rseq_sig);
  e.u64(t.robust_list);
  e.u64(t.robust_len);
  e.u64(t.clear_tid);
}

Status thread_decode(Decoder& d, ProcessImage& img) {
  ThreadMiscImage& t = img.thread;
  OSMO_ASSIGN_OR_RETURN(t.rseq_addr, d.u64());
  OSMO_ASSIGN_OR_RETURN(t.rseq_len, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.rseq_sig, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.robust_list, d.u64());
  OSMO_ASSIGN_OR_RETURN(t.robust_len, d.u64());
  OSMO_ASSIGN_OR_RETURN(t.clear_tid, d.u64());
  return d.finish();
}

void thread_describe(const ProcessImage& img, nlohmann::json& j) {
  const ThreadMiscImage& t = img.thread;
  j["rseq"] = {{"addr", hex(t.rseq_addr)}, {"len", t.rseq_len}, {"sig", hex(t.rseq_sig)}};
  j["robust_list"] = {{"head", hex(t.robust_list)}, {"len", t.robust_len}};
  j["clear_tid_address"] = hex(t.clear_tid);
}

Status thread_unregister_inherited_rseq(RestoreContext& c) {
  // glibc registered rseq for the new process (it is a clone of us): the area is in memory we
  // are about to unmap, and the kernel would write to it on every preemption.
  OSMO_ASSIGN_OR_RETURN(RseqConfig rsc, get_rseq_config(c.pid));
  if (rsc.rseq_abi_pointer != 0)
    OSMO_TRY(c.tracee->syscall_ok("rseq (unregister)", SYS_rseq, rsc.rseq_abi_pointer, rsc.rseq_abi_size, 1,
                                  rsc.signature));
  return ok_status();
}

Status thread_restore(RestoreContext& c) {
  const ThreadMiscImage& t = c.img->thread;
  Tracee& tr = *c.tracee;
  if (t.rseq_addr != 0)
    OSMO_TRY(tr.syscall_ok("rseq (register)", SYS_rseq, t.rseq_addr, t.rseq_len, 0, t.rseq_sig));
  if (t.robust_list != 0)
    OSMO_TRY(tr.syscall_ok("set_robust_list", SYS_set_robust_list, t.robust_list, t.robust_len));
  OSMO_TRY(tr.syscall_ok("set_tid_address", SYS_set_tid_address, t.clear_tid));
  return ok_status();
}

}  // namespace osmo::ckpt
