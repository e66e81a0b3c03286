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
//
// A tree image (docs/engine.md "Process trees") goes the same way with several processes: the
// metadata of every process is read and every refusal made first; the new process above is the
// tree's main process, which clones its children before it parks (they clone theirs, zombies die
// at once), and init clones the tree's other top-level processes (restorer/tree_nodes.cpp); the
// caller waits for every pidfd and kReady, seizes every process, then restores each in image
// order while the pages stream by; the commit detaches all of them, an abort kills all of them.
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include <fmt/format.h>

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

// The metadata sections, one per kind, from `h` (already read) up to the first section that is
// none (a blob, the pages, a tree marker or END), whose header is returned.
Result<SectionHeader> read_kinds(ImageReader& r, SectionHeader h, ProcessImage& img) {
  std::vector<bool> seen(kinds().size(), false);
  std::vector<std::uint8_t> payload;
  for (;;) {
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
    OSMO_ASSIGN_OR_RETURN(h, r.next());
  }
}

// A marker section of a tree image (kProcess, kProcessPages) for live process `index`.
Status read_marker(ImageReader& r, const SectionHeader& h, SectionType want, std::size_t index) {
  if (h.type != want)
    return make_error("image corrupted: {} section where the {} section of process #{} belongs", section_name(h.type),
                      section_name(want), index);
  std::vector<std::uint8_t> payload;
  OSMO_TRY(r.read_payload(&payload));
  Decoder d(payload.data(), payload.size(), section_name(want));
  OSMO_ASSIGN_OR_RETURN(std::uint32_t i, d.u32());
  OSMO_TRY(d.finish());
  if (i != index) return make_error("image corrupted: {} section of process #{} where #{} belongs", section_name(want), i, index);
  return ok_status();
}

// Gives the fds that were open on a carried terminal's /dev/pts/N the slave of its new pty
// (terminal.cpp); every other fd goes to the caller's resolver.
class TerminalFdResolver final : public FdResolver {
 public:
  explicit TerminalFdResolver(FdResolver& inner) : inner_(inner) {}
  Result<int> resolve(const FdImage& f) override {
    if (const int s = slave_of(f); s >= 0) return s;
    return inner_.resolve(f);
  }
  Result<int> resolve_terminal(const TerminalImage& t) override {
    if (slaves_.count(t.index) != 0) return make_error("image corrupted: two sessions lead terminal /dev/pts/{}", t.index);
    OSMO_ASSIGN_OR_RETURN(int slave, inner_.resolve_terminal(t));
    if (slave < 0) return -1;
    OSMO_TRY(terminal_apply(slave, t));
    slaves_[t.index] = slave;
    return slave;
  }
  Status finish(const std::vector<FdImage>& recorded) override {
    std::vector<FdImage> rest;
    for (const FdImage& f : recorded)
      if (slave_of(f) < 0) rest.push_back(f);
    return inner_.finish(rest);
  }

 private:
  int slave_of(const FdImage& f) const {
    constexpr std::string_view kPrefix = "/dev/pts/";
    if (f.kind != FdKind::kTty || f.path.rfind(kPrefix, 0) != 0) return -1;
    for (const auto& [index, slave] : slaves_)
      if (f.path == fmt::format("/dev/pts/{}", index)) return slave;
    return -1;
  }
  FdResolver& inner_;
  std::map<std::int32_t, int> slaves_;  // old /dev/pts index -> the new slave (the inner resolver's fd)
};

// One process of the restore: its image, what the caller opened for it, and once it exists,
// its pidfd, its report and its tracee.
struct ProcRestore {
  ProcessImage img;
  std::vector<UniqueFd> blob_fds;
  std::vector<UniqueFd> files;
  std::vector<int> vma_file_idx;
  int exe_idx = -1;
  UniqueFd pidfd;
  std::optional<restorer::ParkedReport> report;
  std::optional<Tracee> tracee;
  pid_t cpid = -1;
  RestoreContext rc;
  int ctty_file = -1;  // index of its new terminal's slave in its kept files (ParkedReport::files)
};

// Every live process's pidfd (kPidfd, from its creator) and report (kReady), in any order.
Status wait_parked(int sock, std::vector<std::unique_ptr<ProcRestore>>& procs, const restorer::TreePlan& tree) {
  std::size_t pidfds = 0, reports = 0;
  auto find = [&](std::int32_t pid) -> ProcRestore* {
    for (auto& p : procs)
      if (p->img.task.pid == pid) return p.get();
    return nullptr;
  };
  while (pidfds < procs.size() || reports < procs.size()) {
    OSMO_ASSIGN_OR_RETURN(restorer::Message m, restorer::recv_msg(sock, "the new processes"));
    switch (m.tag) {
      case MsgTag::kError: return make_error("{}", m.body);
      case MsgTag::kPidfd: {
        std::int32_t pid = 0;
        if (!m.fd || m.body.size() != sizeof pid) return make_error("internal: a pidfd message without its fd or pid");
        std::memcpy(&pid, m.body.data(), sizeof pid);
        ProcRestore* p = find(pid);
        if (p == nullptr || p->pidfd) return make_error("internal: unexpected pidfd of pid {}", pid);
        p->pidfd = std::move(m.fd);
        pidfds++;
        break;
      }
      case MsgTag::kReady: {
        OSMO_ASSIGN_OR_RETURN(std::int32_t pid, restorer::report_pid(m.body));
        ProcRestore* p = find(pid);
        if (p == nullptr || p->report) return make_error("internal: unexpected report of pid {}", pid);
        std::size_t nfiles = 0;  // how many kept files its report lists: its plan's
        for (std::size_t i = 0; i < procs.size(); i++)
          if (procs[i].get() == p) nfiles = tree.plans[i].files.size();
        OSMO_ASSIGN_OR_RETURN(restorer::ParkedReport rep, restorer::decode_report(m.body, nfiles));
        p->report = std::move(rep);
        reports++;
        break;
      }
      default:
        return make_error("internal: unexpected '{}' message from the new processes", restorer::tag_name(m.tag));
    }
  }
  return ok_status();
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
  OSMO_TRY(r.read_header());
  OSMO_ASSIGN_OR_RETURN(SectionHeader h, r.next());

  // The tree (one process, or the tree section of a tree image), then each live process's
  // metadata and blobs.
  TreeImage tree;
  const bool is_tree = h.type == SectionType::kTree;
  std::vector<std::unique_ptr<ProcRestore>> procs;
  if (is_tree) {
    std::vector<std::uint8_t> payload;
    OSMO_TRY(r.read_payload(&payload));
    Decoder d(payload.data(), payload.size(), "tree");
    OSMO_TRY(tree_decode(d, tree));
    OSMO_ASSIGN_OR_RETURN(h, r.next());
  }
  std::size_t live = 0;
  if (is_tree) {
    for (const TreeProcess& p : tree.procs) live += p.zombie ? 0 : 1;
  } else {
    live = 1;
  }
  for (std::size_t i = 0; i < live; i++) {
    auto p = std::make_unique<ProcRestore>();
    if (is_tree) {
      OSMO_TRY(read_marker(r, h, SectionType::kProcess, i));
      OSMO_ASSIGN_OR_RETURN(h, r.next());
    }
    OSMO_ASSIGN_OR_RETURN(h, read_kinds(r, h, p->img));
    if (p->img.task.pid == 1) return make_error("the image is of a PID 1, which osmo cannot restore");
    // Everything that can refuse happens before a process exists.
    OSMO_TRY(regs_check_cpu(p->img));
    OSMO_TRY(task_check_restorable(p->img));
    OSMO_ASSIGN_OR_RETURN(h, mem_read_blobs(r, h, p->img, &p->blob_fds));
    procs.push_back(std::move(p));
  }
  if (!is_tree) {
    TreeProcess main;
    main.pid = procs[0]->img.task.pid;
    main.sid = procs[0]->img.task.sid;
    main.pgid = procs[0]->img.task.pgid;
    tree.procs.push_back(main);
  }

  // The plans: the tree's nodes, each live process's fds (pipes and shared files across the
  // tree), files, session.
  InheritStdioResolver default_resolver;
  TerminalFdResolver resolver(opts.resolver != nullptr ? *opts.resolver : default_resolver);
  std::vector<int> ctty_slaves(live, -1);  // per live process: its session's new terminal
  for (std::size_t i = 0; i < live; i++)
    if (procs[i]->img.terminal.present) {
      OSMO_ASSIGN_OR_RETURN(ctty_slaves[i], resolver.resolve_terminal(procs[i]->img.terminal));
    }
  std::vector<UniqueFd> owned;
  restorer::TreePlan plan;
  plan.plans.resize(live);
  {
    std::map<std::int32_t, std::size_t> node_of;
    std::size_t li = 0;
    for (const TreeProcess& p : tree.procs) {
      restorer::TreeNodePlan n;
      n.p = p;
      if (!p.zombie) {
        if (li >= live || procs[li]->img.task.pid != p.pid)
          return make_error("image corrupted: process #{} of the tree is not pid {}", li, p.pid);
        n.plan = static_cast<int>(li++);
      }
      if (p.ppid != 0) plan.nodes[node_of.at(p.ppid)].children.push_back(plan.nodes.size());
      node_of[p.pid] = plan.nodes.size();
      plan.nodes.push_back(std::move(n));
    }
    // A process group whose leader is gone (it exited and was reaped) while members of it are in
    // the tree: a group placeholder with the leader's pid is created just before the first
    // member, by the same parent (so in the same session); it leads the group, dies at once, and
    // the parent reaps it once the member has joined (tree_nodes.cpp). The main process's group
    // has its own placeholder (session.cpp).
    const std::size_t real_nodes = plan.nodes.size();
    for (std::size_t i = 1; i < real_nodes; i++) {
      const TreeProcess p = plan.nodes[i].p;
      if (p.pgid == 0 || p.pgid == p.pid || p.pgid == tree.procs[0].pgid || node_of.count(p.pgid) != 0) continue;
      if (p.pgid == 1) return make_error("process group 1 of pid {} cannot be rebuilt (pid 1 is the restore's init)", p.pid);
      restorer::TreeNodePlan ph;
      ph.p = TreeProcess{p.pgid, p.ppid, p.sid, p.pgid, true, 0};
      ph.placeholder = true;
      const std::size_t idx = plan.nodes.size();
      node_of[p.pgid] = idx;
      if (p.ppid != 0) {
        auto& kids = plan.nodes[node_of.at(p.ppid)].children;
        kids.insert(kids.begin(), idx);
      }
      plan.nodes.push_back(std::move(ph));
    }
  }
  UniqueFd netns;
  if (!opts.netns_path.empty()) {
    netns.reset(::open(opts.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns) return errno_error("cannot open network namespace {}", opts.netns_path);
  }
  FdTreeState fd_tree;
  std::vector<FdImage> all_fds;
  for (std::size_t i = 0; i < live; i++) {
    ProcRestore& p = *procs[i];
    restorer::ChildPlan& cp = plan.plans[i];
    cp.img = &p.img;
    cp.tree = &plan;
    for (std::size_t k = 0; k < plan.nodes.size(); k++)
      if (plan.nodes[k].plan == static_cast<int>(i)) cp.node = k;
    // The main process's session and group are rebuilt with placeholders if their leaders are
    // gone (session.cpp); the others' by their tree (tree_nodes.cpp).
    if (i == 0) {
      OSMO_ASSIGN_OR_RETURN(cp.session, plan_session(p.img.task.pid, p.img.task.sid, p.img.task.pgid));
    }
    OSMO_ASSIGN_OR_RETURN(cp.fds, fds_plan(p.img, resolver, opts.verify_inode, p.blob_fds, &owned, &fd_tree));
    all_fds.insert(all_fds.end(), p.img.fds.begin(), p.img.fds.end());
    OSMO_TRY(mem_open_files(p.img, p.blob_fds, opts.verify_inode, &p.files, &p.vma_file_idx, &p.exe_idx));
    for (auto& f : p.files) cp.files.push_back(f.get());
    if (ctty_slaves[i] >= 0) {
      cp.ctty_fd = ctty_slaves[i];
      p.ctty_file = static_cast<int>(cp.files.size());  // kept: the foreground group is set through it
      cp.files.push_back(ctty_slaves[i]);
    }
    cp.netns_fd = netns.get();
    cp.tramp_candidates = mem_trampoline_candidates(p.img);
    if (opts.hide_clock_jump && i == 0) cp.timens_offsets = timens_offsets_for(p.img);
  }
  OSMO_TRY(resolver.finish(all_fds));  // e.g. a stand-in given for an fd that needs none

  // Create init and, through it, the tree.
  OSMO_ASSIGN_OR_RETURN(restorer::InitProcess init, restorer::start_init(plan.plans[0]));
  const pid_t init_pid = init.pid;
  ScopeGuard kill_init([&] {
    for (auto& p : procs)
      if (p->tracee) p->tracee->kill_now();
    ::kill(init_pid, SIGKILL);
    int st;
    while (::waitpid(init_pid, &st, 0) < 0 && errno == EINTR) {
    }
  });
  OSMO_TRY(wait_parked(init.sock.get(), procs, plan));
  // Seize every process before restoring any: none can run past its park any more.
  for (auto& pp : procs) {
    ProcRestore& p = *pp;
    OSMO_ASSIGN_OR_RETURN(p.cpid, pid_of_pidfd(p.pidfd.get()));
    OSMO_ASSIGN_OR_RETURN(Tracee t, Tracee::seize_and_stop(p.cpid, Tracee::OnRelease::kKill, true, nullptr));
    p.tracee.emplace(std::move(t));
  }
  OSMO_TRY(fault("restore.after_clone"));

  std::uint64_t pages_written = 0;
  for (std::size_t i = 0; i < live; i++) {
    ProcRestore& p = *procs[i];
    Tracee& tracee = *p.tracee;
    RestoreContext& rc = p.rc;
    const pid_t cpid = p.cpid;
    const restorer::ParkedReport& rep = *p.report;
    rc.tracee = &tracee;
    rc.pid = cpid;
    rc.img = &p.img;
    rc.use_uffd = opts.fill_with_userfaultfd || opts.lazy_anonymous_pages != nullptr;
    rc.lazy = opts.lazy_anonymous_pages;  // post-copy: lazy_pages.hpp, one entry per process
    rc.page_store = opts.page_store;      // pre-copy: the pages the image leaves out
    rc.tramp = rep.tramp;
    rc.tramp_size = kTrampSize;
    rc.data = rc.tramp + kTrampDataOffset;
    rc.helper_fd_base = rep.helper_fd_base;
    rc.vma_fds.assign(p.img.mem.vmas.size(), -1);
    for (std::size_t k = 0; k < p.vma_file_idx.size(); k++)
      if (p.vma_file_idx[k] >= 0) rc.vma_fds[k] = rep.files[static_cast<std::size_t>(p.vma_file_idx[k])];
    rc.exe_fd = p.exe_idx >= 0 ? rep.files[static_cast<std::size_t>(p.exe_idx)] : -1;
    tracee.set_gate(rc.tramp, GateKind::kInt3);
    tracee.set_executor(rc.tramp + kExecutorOffset, rc.tramp + kTrampTableOffset, kTrampTableEntries);
    OSMO_TRY(tracee.set_sigmask(~0ull));
    OSMO_TRY(regs_check_xstate(rc));
    OSMO_TRY(thread_unregister_inherited_rseq(rc));

    engine_log().debug("restore pid={} metadata+process ms={:.2f}", cpid, ms_since(t0));
    auto tp = std::chrono::steady_clock::now();
    OSMO_TRY(mem_restore_layout(rc));
    if (is_tree) {
      OSMO_TRY(read_marker(r, h, SectionType::kProcessPages, i));
      OSMO_ASSIGN_OR_RETURN(h, r.next());
    }
    OSMO_ASSIGN_OR_RETURN(h, mem_restore_pages(rc, r, h));
    engine_log().debug("restore pid={} layout+pages ms={:.2f}", cpid, ms_since(tp));
    tp = std::chrono::steady_clock::now();
    if (tracee.batch_running()) OSMO_TRY(tracee.finish_batch());
    const SectionType next_want = is_tree && i + 1 < live ? SectionType::kProcessPages : SectionType::kEnd;
    if (h.type != next_want)
      return make_error("image corrupted: unexpected {} section after the pages", section_name(h.type));
    if (i + 1 == live) {
      // The last bytes of the image that are read: whatever follows END in the stream (a
      // migration keeps talking on the same socket) is left for the caller.
      std::vector<std::uint8_t> end_payload;
      OSMO_TRY(r.read_payload(&end_payload));  // verifies the END totals
    }
    OSMO_TRY(mem_restore_protect(rc));
    OSMO_TRY(mm_restore(rc));
    OSMO_TRY(thread_restore(rc));
    OSMO_TRY(sig_restore_pending(rc));
    OSMO_TRY(task_restore_limits(rc));
    if (p.ctty_file >= 0) OSMO_TRY(terminal_restore_foreground(rc, rep.files[static_cast<std::size_t>(p.ctty_file)]));
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
    OSMO_TRY(tracee.set_sigmask(p.img.sig.blocked));
    OSMO_TRY(tracee.set_xstate(p.img.regs.xstate));
    OSMO_TRY(tracee.set_regs(with_syscall_restart(p.img.regs.gp)));
    pages_written += rc.pages_written;
    engine_log().debug("restore pid={} rest ms={:.2f}", cpid, ms_since(tp));
  }

  HeldRestore held{std::move(init), {}, std::move(procs[0]->pidfd), RestoredProcess{}, t0};
  for (auto& p : procs) held.tracees.push_back(std::move(*p->tracee));
  for (auto& p : procs) p->tracee.reset();
  kill_init.dismiss();
  held.info.pid = procs[0]->cpid;
  held.info.init_pid = init_pid;
  held.info.image_pid = procs[0]->img.task.pid;
  held.info.pages_written = pages_written;
  held.info.processes = live;
  held.info.total_ms = ms_since(t0);
  return held;
}

Status commit_restore(HeldRestore& held) {
  // init first stops depending on us, then the process runs (timeline at the top).
  OSMO_TRY(restorer::send_msg(held.init.sock.get(), MsgTag::kGo));
  OSMO_TRY(wait_detached(held.init.sock.get()));
  OSMO_TRY(fault("restore.commit"));
  // Every process of the tree was complete before any is let go; they start together.
  Status first = ok_status();
  for (Tracee& t : held.tracees)
    if (Status d = t.detach(); !d.ok() && first.ok()) first = std::move(d);
  OSMO_TRY(first);
  held.init.sock.reset();
  held.info.total_ms = ms_since(held.started_at);
  return ok_status();
}

void abort_restore(HeldRestore& held) {
  // The process first (a traced process's end is reported to us before init can reap it), then
  // init, whose death takes the namespace and anything left in it.
  for (Tracee& t : held.tracees) ::kill(t.pid(), SIGKILL);
  for (Tracee& t : held.tracees) t.kill_now();
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
