// SPDX-License-Identifier: GPL-2.0-or-later
// restore(): sequences the kinds to build a new process from an image stream. What runs inside
// the processes being built (init, the placeholders, the new process until it parks) is in
// restorer/; this file only drives it. Two halves: restore_until_commit() up to "the process is
// complete and still stopped", commit_restore() from there (restore() runs both at once;
// restore_held()'s PendingRestore keeps the first and runs the second at commit(), or
// abort_restore() instead; transaction.cpp).
//
//   caller (this process)              init (PID 1, new pid+mount ns)       new process
//   read metadata, blobs; open files,
//   resolve stand-ins (all refusals
//   happen here, before any process)
//   clone3(NEWPID|NEWNS) ----------->  private mounts, fresh /proc,
//   [restorer/init.cpp]                unshare(NEWTIME) + offsets,
//                                      [session/group placeholders with
//                                      the leaders' pids, restorer/chain.cpp]
//                                      clone3(set_tid = image pid) ---->  setsid/setpgid if it led
//                                                                        them, setns(net), fds to
//                                      kPidfd (its pidfd)                their numbers, cwd, umask,
//                                                                        personality, comm,
//                                                                        dispositions, altstack,
//                                                                        trampoline; kReady; park
//                                                                        [restorer/child.cpp]
//   seize + stop the new process; by injected syscalls: unregister rseq, unmap its own memory,
//   move the vdso, map the image, populate, write pages, mprotect, PR_SET_MM_MAP, rseq/robust
//   list/tid address, pending signals, rlimits, close helper fds, credentials and
//   capabilities, itimers (every signal still blocked); SIGTRAP's disposition and munmap of the
//   trampoline through syscall stops (no int3 after them); mask, xstate, registers. The process
//   is complete and still stopped [end of restore_until_commit]. Commit [commit_restore]:
//   kGo ---------------------------->  PR_SET_PDEATHSIG cleared
//                      <-------------  kDetached; close fds; reap, forward signals, exit with
//                                      the child's status (128+N for signal N)
//   PTRACE_DETACH -------------------------------------------------------->  runs
//   return: nothing depends on the caller any more.
//
// Until kDetached, init dies with the caller (PDEATHSIG: with the caller's *thread*) and the
// namespace with it; until PTRACE_DETACH, the process dies with the caller's thread
// (PTRACE_O_EXITKILL) without having run. So whenever the caller dies, either restore() had
// returned and the tree is on its own, or the process never ran an instruction and nothing is
// left (init, if it outlived its PDEATHSIG, reaps the killed process and exits). The process
// running before init stopped depending on the caller was the `restore --detach` race: the
// command printed the pid and exited before init read "go", and killed what it had restored
// (144 of 200 detached restores of `sleep` before this order; tests/ckpt/cli_detach.sh).
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "base/scope_guard.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/faults.hpp"
#include "ckpt/held.hpp"
#include "ckpt/kinds.hpp"
#include "ckpt/phase_log.hpp"
#include "ckpt/restorer/child.hpp"
#include "ckpt/restorer/init.hpp"
#include "ckpt/restorer/messages.hpp"

namespace osmo::ckpt {
namespace {

using restorer::MsgTag;

// The metadata sections, one per kind, up to the first section that is none (a blob, the
// pages or END), whose header is returned.
Result<SectionHeader> read_metadata(ImageReader& r, ProcessImage& img) {
  OSMO_TRY(r.read_header());
  std::vector<bool> seen(kinds().size(), false);
  std::vector<std::uint8_t> payload;
  for (;;) {
    OSMO_ASSIGN_OR_RETURN(SectionHeader h, r.next());
    std::size_t k = 0;
    while (k < kinds().size() && kinds()[k].section != h.type) k++;
    if (k == kinds().size()) {
      for (std::size_t i = 0; i < kinds().size(); i++)
        if (!seen[i]) return make_error("image corrupted: no {} section", kinds()[i].name);
      return h;
    }
    if (seen[k]) return make_error("image corrupted: two {} sections", kinds()[k].name);
    seen[k] = true;
    OSMO_TRY(r.read_payload(&payload));
    Decoder d(payload.data(), payload.size(), kinds()[k].name);
    OSMO_TRY(kinds()[k].decode(d, img));
  }
}

// The new process's pidfd (kPidfd, from init) and its report (kReady), in either order.
struct Parked {
  UniqueFd pidfd;
  restorer::ParkedReport report;
};
Result<Parked> wait_parked(int sock, std::size_t nfiles) {
  Parked p;
  bool reported = false;
  while (!p.pidfd || !reported) {
    OSMO_ASSIGN_OR_RETURN(restorer::Message m, restorer::recv_msg(sock, "the new process"));
    switch (m.tag) {
      case MsgTag::kError: return make_error("{}", m.body);
      case MsgTag::kPidfd:
        if (!m.fd) return make_error("internal: init's pidfd message carries no fd");
        p.pidfd = std::move(m.fd);
        break;
      case MsgTag::kReady: {
        OSMO_ASSIGN_OR_RETURN(p.report, restorer::decode_report(m.body, nfiles));
        reported = true;
        break;
      }
      default:
        return make_error("internal: unexpected '{}' message from the new process", restorer::tag_name(m.tag));
    }
  }
  return p;
}

// init's answer to kGo: it no longer dies with us.
Status wait_detached(int sock) {
  OSMO_ASSIGN_OR_RETURN(restorer::Message m, restorer::recv_msg(sock, "init to stop depending on the restorer"));
  if (m.tag == MsgTag::kError) return make_error("{}", m.body);
  if (m.tag != MsgTag::kDetached)
    return make_error("internal: init answered the go with '{}'", restorer::tag_name(m.tag));
  return ok_status();
}

}  // namespace

Result<HeldRestore> restore_until_commit(int in_fd, const RestoreOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  ImageReader r = opts.source != nullptr ? ImageReader(*opts.source) : ImageReader(in_fd);
  ProcessImage img;
  OSMO_ASSIGN_OR_RETURN(SectionHeader h, read_metadata(r, img));
  if (img.task.pid == 1) return make_error("the image is of a PID 1, which osmo cannot restore");

  // Everything that can refuse happens before a process exists.
  OSMO_TRY(regs_check_cpu(img));
  OSMO_TRY(task_check_restorable(img));
  std::vector<UniqueFd> blob_fds;
  OSMO_ASSIGN_OR_RETURN(h, mem_read_blobs(r, h, img, &blob_fds));
  InheritStdioResolver default_resolver;
  FdResolver& resolver = opts.resolver != nullptr ? *opts.resolver : default_resolver;
  std::vector<UniqueFd> owned;
  restorer::ChildPlan plan;
  plan.img = &img;
  OSMO_ASSIGN_OR_RETURN(plan.session, plan_session(img.task.pid, img.task.sid, img.task.pgid));
  OSMO_ASSIGN_OR_RETURN(plan.fds, fds_plan(img, resolver, opts.verify_inode, blob_fds, &owned));
  std::vector<UniqueFd> files;
  std::vector<int> vma_file_idx;
  int exe_idx = -1;
  OSMO_TRY(mem_open_files(img, blob_fds, opts.verify_inode, &files, &vma_file_idx, &exe_idx));
  for (auto& f : files) plan.files.push_back(f.get());
  UniqueFd netns;
  if (!opts.netns_path.empty()) {
    netns.reset(::open(opts.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns) return errno_error("cannot open network namespace {}", opts.netns_path);
    plan.netns_fd = netns.get();
  }
  plan.tramp_candidates = mem_trampoline_candidates(img);
  if (opts.hide_clock_jump) plan.timens_offsets = timens_offsets_for(img);

  // Create init and, through it, the new process.
  OSMO_ASSIGN_OR_RETURN(restorer::InitProcess init, restorer::start_init(plan));
  const pid_t init_pid = init.pid;
  ScopeGuard kill_init([&] {
    ::kill(init_pid, SIGKILL);
    int st;
    while (::waitpid(init_pid, &st, 0) < 0 && errno == EINTR) {
    }
  });
  OSMO_ASSIGN_OR_RETURN(Parked parked, wait_parked(init.sock.get(), plan.files.size()));
  OSMO_ASSIGN_OR_RETURN(pid_t cpid, pid_of_pidfd(parked.pidfd.get()));
  OSMO_ASSIGN_OR_RETURN(Tracee tracee, Tracee::seize_and_stop(cpid, Tracee::OnRelease::kKill, true, nullptr));
  OSMO_TRY(fault("restore.after_clone"));

  RestoreContext rc;
  rc.tracee = &tracee;
  rc.pid = cpid;
  rc.img = &img;
  rc.use_uffd = opts.fill_with_userfaultfd || opts.lazy_anonymous_pages != nullptr;
  rc.lazy = opts.lazy_anonymous_pages;  // post-copy: lazy_pages.hpp
  rc.tramp = parked.report.tramp;
  rc.tramp_size = kTrampSize;
  rc.data = rc.tramp + kTrampDataOffset;
  rc.helper_fd_base = parked.report.helper_fd_base;
  rc.vma_fds.assign(img.mem.vmas.size(), -1);
  for (std::size_t i = 0; i < vma_file_idx.size(); i++)
    if (vma_file_idx[i] >= 0) rc.vma_fds[i] = parked.report.files[static_cast<std::size_t>(vma_file_idx[i])];
  rc.exe_fd = exe_idx >= 0 ? parked.report.files[static_cast<std::size_t>(exe_idx)] : -1;
  tracee.set_gate(rc.tramp, GateKind::kInt3);
  tracee.set_executor(rc.tramp + kExecutorOffset, rc.tramp + kTrampTableOffset, kTrampTableEntries);
  OSMO_TRY(tracee.set_sigmask(~0ull));
  OSMO_TRY(regs_check_xstate(rc));
  OSMO_TRY(thread_unregister_inherited_rseq(rc));

  engine_log().debug("restore pid={} metadata+process ms={:.2f}", cpid, ms_since(t0));
  auto tp = std::chrono::steady_clock::now();
  OSMO_TRY(mem_restore_layout(rc));
  OSMO_ASSIGN_OR_RETURN(h, mem_restore_pages(rc, r, h));
  engine_log().debug("restore pid={} layout+pages ms={:.2f}", cpid, ms_since(tp));
  tp = std::chrono::steady_clock::now();
  if (tracee.batch_running()) OSMO_TRY(tracee.finish_batch());
  if (h.type != SectionType::kEnd)
    return make_error("image corrupted: unexpected {} section after the pages", section_name(h.type));
  // The last bytes of the image that are read: whatever follows END in the stream (a migration
  // keeps talking on the same socket) is left for the caller.
  std::vector<std::uint8_t> end_payload;
  OSMO_TRY(r.read_payload(&end_payload));  // verifies the END totals
  OSMO_TRY(mem_restore_protect(rc));
  OSMO_TRY(mm_restore(rc));
  OSMO_TRY(thread_restore(rc));
  OSMO_TRY(sig_restore_pending(rc));
  OSMO_TRY(task_restore_limits(rc));
  OSMO_TRY(tracee.syscall_ok("close_range (helper fds)", SYS_close_range,
                             static_cast<std::uint64_t>(rc.helper_fd_base), ~0u, 0));
  OSMO_TRY(task_restore_creds(rc));
  // Timers last: they start running only now, and one that expires before the process runs
  // just leaves its signal pending (every signal is still blocked), as it would have in the
  // original. No injected call after this one can be disturbed by a timer signal.
  OSMO_TRY(timers_restore(rc));
  OSMO_TRY(fault("restore.regs"));
  OSMO_TRY(fault("restore.before_detach"));
  OSMO_TRY(sig_restore_sigtrap(rc));  // after the last int3 (ptrace.hpp)
  OSMO_TRY(tracee.syscall_final(SYS_munmap, rc.tramp, rc.tramp_size));
  OSMO_TRY(tracee.set_sigmask(img.sig.blocked));
  OSMO_TRY(tracee.set_xstate(img.regs.xstate));
  OSMO_TRY(tracee.set_regs(with_syscall_restart(img.regs.gp)));
  engine_log().debug("restore pid={} rest ms={:.2f}", cpid, ms_since(tp));

  HeldRestore held{std::move(init), std::move(tracee), std::move(parked.pidfd), RestoredProcess{}, t0};
  kill_init.dismiss();
  held.info.pid = cpid;
  held.info.init_pid = init_pid;
  held.info.image_pid = img.task.pid;
  held.info.pages_written = rc.pages_written;
  held.info.total_ms = ms_since(t0);
  return held;
}

Status commit_restore(HeldRestore& held) {
  // init first stops depending on us, then the process runs (timeline at the top).
  OSMO_TRY(restorer::send_msg(held.init.sock.get(), MsgTag::kGo));
  OSMO_TRY(wait_detached(held.init.sock.get()));
  OSMO_TRY(fault("restore.commit"));
  OSMO_TRY(held.tracee.detach());
  held.init.sock.reset();
  held.info.total_ms = ms_since(held.started_at);
  return ok_status();
}

void abort_restore(HeldRestore& held) {
  // The process first (a traced process's end is reported to us before init can reap it), then
  // init, whose death takes the namespace and anything left in it.
  held.tracee.kill_now();
  if (held.init.pid > 0) {
    ::kill(held.init.pid, SIGKILL);
    int st;
    while (::waitpid(held.init.pid, &st, 0) < 0 && errno == EINTR) {
    }
    held.init.pid = -1;
  }
  held.init.sock.reset();
  held.pidfd.reset();
}

Result<RestoredProcess> restore(int in_fd, const RestoreOptions& opts) {
  auto held = restore_until_commit(in_fd, opts);
  Status s = held.ok() ? commit_restore(*held) : Status(held.error());
  if (!s.ok()) {
    if (held.ok()) abort_restore(*held);
    Error e = s.take_error();
    return Error{e.code, fmt::format("cannot restore: {}", e.message)};
  }
  RestoredProcess out = held->info;
  out.pidfd = held->pidfd.release();
  return out;
}

}  // namespace osmo::ckpt
