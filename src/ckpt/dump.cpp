// SPDX-License-Identifier: GPL-2.0-or-later
// checkpoint(): sequences the kinds. Preflight (read /proc only, refuse before touching),
// seize + stop, collect every kind, stream the image, put the process back as it was, then
// release it: resumed exactly where it was (default) or killed once the complete image is
// written. checkpoint_and_hold() (transaction.cpp) stops before the release and lets its caller
// choose later.
//
// Timeline of the process during a dump:
//   running -> [PTRACE_SEIZE + INTERRUPT] stopped -> [injected: mmap scratch, rt_sigaction
//   (SIGTRAP, before any int3), brk(0), rt_sigaction x64, sigaltstack, getitimer x3, prctl]
//   -> pages read, END written -> [SIGTRAP's disposition set back, munmap scratch, registers put
//   back with the syscall-restart rule] -> (held: still stopped, as if never touched) ->
//   detached: running again (or killed)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "base/log.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/faults.hpp"
#include "ckpt/held.hpp"
#include "ckpt/kinds.hpp"
#include "ckpt/phase_log.hpp"

namespace osmo::ckpt {

// A `syscall` instruction (0f 05) in an executable mapping of the process: [vdso] first.
Result<std::uint64_t> find_syscall_insn(Tracee& t, const std::vector<MapsEntry>& maps) {
  std::vector<const MapsEntry*> order;
  for (const MapsEntry& e : maps)
    if (e.name == "[vdso]") order.push_back(&e);
  for (const MapsEntry& e : maps)
    if (e.x && e.r && e.name != "[vdso]" && e.name != "[vsyscall]") order.push_back(&e);
  std::vector<std::uint8_t> buf;
  for (const MapsEntry* e : order) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(e->end - e->start, 1u << 20));
    buf.resize(n);
    if (!t.read_mem(e->start, buf.data(), n).ok()) continue;
    for (std::size_t i = 0; i + 1 < n; i++)
      if (buf[i] == 0x0f && buf[i + 1] == 0x05) return e->start + i;
  }
  return make_error("no syscall instruction found in any executable mapping");
}

namespace {

// fsync of the files the stopped process has open for writing (CheckpointOptions::
// sync_written_files). fsync works on the file, not the descriptor, so our own read-only open of
// /proc/PID/fd/N flushes what the process wrote through its fd and through shared mappings.
Status sync_written_files(const DumpContext& c) {
  for (const FdImage& f : c.img->fds) {
    if (f.kind != FdKind::kRegular || (f.flags & O_ACCMODE) == O_RDONLY) continue;
    UniqueFd own(::open(fmt::format("/proc/{}/fd/{}", c.pid, f.fd).c_str(), O_RDONLY | O_CLOEXEC));
    if (!own) return errno_error("cannot reopen fd {} ({}) to flush it", f.fd, f.path);
    if (::fsync(own.get()) != 0) return errno_error("cannot flush fd {} ({}) before the image", f.fd, f.path);
  }
  return ok_status();
}

// Puts the process back as it was when seized, still stopped: the scratch page goes, SIGTRAP's
// disposition, mask and registers are set back, and signals taken off it while it was being
// stopped go back to the tracee's list, which detach() sends again. Best effort on error paths:
// the first error is returned, everything else is still tried.
class PutBack {
 public:
  explicit PutBack(DumpContext& c) : c_(c) {}
  Status run() {
    Tracee& t = *c_.tracee;
    Status first = ok_status();
    auto keep = [&](Status s) {
      if (first.ok() && !s.ok()) first = std::move(s);
    };
    if (c_.scratch != 0) {
      // Our int3s may have reset SIGTRAP's disposition (ptrace.hpp): set it back through the
      // scratch page's `syscall` (syscall stops, no int3 any more).
      t.set_gate(c_.scratch, GateKind::kSyscallStops);
      if (c_.sigtrap_saved) keep(sig_put_back_sigtrap(t, c_.scratch_data(), c_.sigtrap_action));
      // The gate may be inside the scratch mapping: stop at the syscall exit, before returning
      // to the (then unmapped) instruction after it.
      auto r = t.syscall_final(SYS_munmap, c_.scratch, kTrampSize);
      if (!r.ok()) keep(r.take_error());
      else if (*r != 0) keep(make_error("cannot unmap the scratch area ({})", *r));
      c_.scratch = 0;
    }
    if (armed_regs_) {
      keep(t.set_sigmask(c_.original_sigmask));
      keep(t.set_regs(with_syscall_restart(c_.original_regs)));
    }
    // Not queued back into the process yet (sig_dump does that): sent again at release.
    for (const siginfo_t& si : c_.stolen) t.defer_signal(si);
    c_.stolen.clear();
    return first;
  }
  void arm_regs() { armed_regs_ = true; }

 private:
  DumpContext& c_;
  bool armed_regs_ = false;
};

}  // namespace

Status preflight_checks(pid_t pid, const CheckpointOptions& opts) {
  if (::kill(pid, 0) != 0) return errno_error("no such process");
  OSMO_ASSIGN_OR_RETURN(ProcStatus st, read_status(pid));
  OSMO_TRY(task_preflight(pid, st));
  OSMO_ASSIGN_OR_RETURN(auto maps, read_maps(pid));
  OSMO_TRY(mem_preflight(pid, maps));
  return fds_preflight(pid, opts);
}

Status ProcDump::seize() {
  c.pid = pid;
  c.options = options;
  c.img = &img;
  OSMO_ASSIGN_OR_RETURN(Tracee t, Tracee::seize_and_stop(pid, Tracee::OnRelease::kDetach, false, &c.stolen));
  tracee.emplace(std::move(t));
  frozen_at = std::chrono::steady_clock::now();
  c.tracee = &*tracee;
  return ok_status();
}

Status ProcDump::collect() {
  Tracee& t = *tracee;
  OSMO_ASSIGN_OR_RETURN(c.original_regs, t.get_regs());
  OSMO_ASSIGN_OR_RETURN(c.original_xstate, t.get_xstate());
  OSMO_ASSIGN_OR_RETURN(c.original_sigmask, t.get_sigmask());
  armed_regs = true;
  OSMO_TRY(fault("dump.after_seize"));
  // A thread may have been created between preflight and seize.
  OSMO_ASSIGN_OR_RETURN(c.status, read_status(pid));
  if (c.status.threads != 1)
    return make_error("it has {} threads (only single-threaded processes are supported)", c.status.threads);
  OSMO_ASSIGN_OR_RETURN(c.maps, read_maps(pid));
  OSMO_TRY(mem_preflight(pid, c.maps));
  OSMO_ASSIGN_OR_RETURN(std::uint64_t gate, find_syscall_insn(t, c.maps));
  t.set_gate(gate, GateKind::kSyscallStops);
  OSMO_TRY(t.set_sigmask(~0ull));
  OSMO_ASSIGN_OR_RETURN(long scratch, t.syscall_ok("mmap (scratch)", SYS_mmap, 0, kTrampSize,
                                                   PROT_READ | PROT_WRITE | PROT_EXEC,
                                                   MAP_PRIVATE | MAP_ANONYMOUS, static_cast<std::uint64_t>(-1), 0));
  c.scratch = static_cast<std::uint64_t>(scratch);
  OSMO_TRY(t.write_mem(c.scratch, injected_code().data(), injected_code().size()));
  OSMO_TRY(sig_save_sigtrap(c));  // still through [vdso]'s syscall: before our first int3
  t.set_gate(c.scratch, GateKind::kInt3);
  t.set_executor(c.scratch + kExecutorOffset, c.scratch + kTrampTableOffset, kTrampTableEntries);
  for (const KindOps& k : kinds()) {
    auto tk = std::chrono::steady_clock::now();
    OSMO_TRY(k.dump(c));
    engine_log().debug("dump pid={} kind={} ms={:.2f}", pid, k.name, ms_since(tk));
  }
  if (options->sync_written_files) OSMO_TRY(sync_written_files(c));
  return ok_status();
}

Status ProcDump::write_metadata(ImageWriter& w) {
  for (const KindOps& k : kinds()) {
    Encoder e;
    k.encode(img, e);
    OSMO_TRY(w.write_section(k.section, e.buffer()));
  }
  return ok_status();
}

Status ProcDump::write_blobs(ImageWriter& w) { return mem_write_blobs(c, w); }

Status ProcDump::write_pages(ImageWriter& w, CheckpointStats* stats) { return mem_write_pages(c, w, stats); }

Status ProcDump::put_back() {
  if (!tracee) return ok_status();
  PutBack pb(c);
  if (armed_regs) pb.arm_regs();
  armed_regs = false;
  return pb.run();
}

void ProcDump::release_unchanged() {
  if (!tracee) return;
  (void)put_back();
  (void)tracee->detach();
  tracee.reset();
}

Result<FrozenDump> dump_and_freeze(pid_t pid, int out_fd, const CheckpointOptions& opts, CheckpointStats* stats) {
  if (opts.scope != TreeScope::kProcess) return dump_tree_and_freeze(pid, out_fd, opts, stats);
  // 1. Preflight: /proc only. The process is not touched if anything is unsupported.
  OSMO_TRY(preflight_checks(pid, opts));

  // 2. Seize and stop.
  ProcDump d;
  d.pid = pid;
  d.options = &opts;
  OSMO_TRY(d.seize());
  Status result = [&]() -> Status {
    // 3. Collect every kind, then stream.
    OSMO_TRY(d.collect());
    auto tw = std::chrono::steady_clock::now();
    ImageWriter w = ImageWriter::make(out_fd, opts.sink, opts.compress);
    OSMO_TRY(w.write_header());
    OSMO_TRY(d.write_metadata(w));
    OSMO_TRY(fault("dump.metadata"));
    OSMO_TRY(d.write_blobs(w));
    engine_log().debug("dump pid={} metadata+blobs ms={:.2f} since_freeze_ms={:.2f}", pid, ms_since(tw),
                       ms_since(d.frozen_at));
    tw = std::chrono::steady_clock::now();
    OSMO_TRY(d.write_pages(w, stats));
    engine_log().debug("dump pid={} pages ms={:.2f}", pid, ms_since(tw));
    OSMO_TRY(fault("dump.before_end"));
    OSMO_TRY(w.write_end());
    if (stats != nullptr) {
      stats->image_bytes = w.totals().stored_bytes + kImageHeaderSize;
      stats->stand_ins.clear();
      for (const FdImage& f : d.img.fds)
        if (needs_stand_in(f)) stats->stand_ins.push_back(f);
    }
    return ok_status();
  }();
  // 4. Put back as it was, still stopped; released (resumed) here only if anything failed.
  Status back = d.put_back();
  if (result.ok()) result = std::move(back);
  if (result.ok()) result = fault("dump.held");
  if (!result.ok()) {
    (void)d.tracee->detach();
    return result.take_error();
  }
  FrozenDump out;
  out.tracees.push_back(std::move(*d.tracee));
  out.frozen_at = d.frozen_at;
  return out;
}

Status checkpoint(pid_t pid, int out_fd, const CheckpointOptions& opts, CheckpointStats* stats) {
  auto t0 = std::chrono::steady_clock::now();
  auto frozen = dump_and_freeze(pid, out_fd, opts, stats);
  Status s = ok_status();
  if (!frozen.ok()) {
    s = frozen.take_error();
  } else {
    // Kill only after a complete image (END written): never a process lost to a failed dump.
    if (opts.after == AfterDump::kKill) frozen->kill_all();
    else s = frozen->detach_all();
    if (stats != nullptr) {
      stats->freeze_ms = ms_since(frozen->frozen_at);
      stats->total_ms = ms_since(t0);
    }
  }
  if (!s.ok()) {
    Error e = s.take_error();
    return Error{e.code, fmt::format("cannot checkpoint pid {}: {}", pid, e.message)};
  }
  return ok_status();
}

Status preflight(pid_t pid, const CheckpointOptions& options) {
  if (options.scope != TreeScope::kProcess) return tree_preflight(pid, options);
  return preflight_checks(pid, options);
}

}  // namespace osmo::ckpt
