// SPDX-License-Identifier: GPL-2.0-or-later
// Process trees: which processes a tree checkpoint takes (CheckpointOptions::scope), how they
// are frozen as one unit, and the tree section of the image.
//
// A tree is surveyed from /proc (children lists, status, stat): its live processes and the
// zombies its processes have not reaped yet (with their wait status). Every live process is
// preflighted (a refusal names the process), then all are seized and stopped, parents first.
// Once all are stopped none can fork, exit or reap any more, so the tree is surveyed again: if
// anything changed in between (a process forked, exited or reaped a zombie), everything is
// released unchanged and the freeze is tried again, a few times, then refused. A tree image is
// therefore never of half a tree.
//
// Timeline of a tree dump (each process as in dump.cpp):
//   survey -> preflight each -> seize all -> survey again (same tree, or release and retry) ->
//   collect each -> link fds across processes (shared open files, pipes between processes:
//   fds.cpp) -> header, TREE, per live process {PROCESS, metadata, blobs}, per live process
//   {PROCESS_PAGES, pages}, END -> put back each (still stopped) -> held / released together.
#include <linux/kcmp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include "base/log.hpp"
#include "ckpt/faults.hpp"
#include "ckpt/held.hpp"
#include "ckpt/kinds.hpp"
#include "ckpt/phase_log.hpp"
#include "platform/linux/proc_files.hpp"

namespace osmo::ckpt {
namespace {

constexpr int kFreezeAttempts = 5;

// One process of the tree as this (the caller's) pid namespace sees it.
struct Member {
  pid_t host = -1;
  std::string comm;
  TreeProcess p;
};

std::string name_of(const Member& m) { return fmt::format("process {} ({})", m.p.pid, m.comm); }

// A tree that changed while we looked at it: worth another try.
struct Survey {
  std::vector<Member> members;  // parents before children, the main process first
  bool vanished = false;        // a process disappeared while being read
};

Result<Survey> survey(pid_t root, TreeScope scope) {
  Survey out;
  std::deque<pid_t> queue;
  if (scope == TreeScope::kNamespace) {
    OSMO_ASSIGN_OR_RETURN(auto fields, read_stat_fields(root));
    if (fields.size() < 5) return make_error("cannot read the parent of pid {}", root);
    pid_t init = static_cast<pid_t>(std::stol(fields[4]));
    OSMO_ASSIGN_OR_RETURN(ProcStatus ist, read_status(init));
    OSMO_ASSIGN_OR_RETURN(ProcStatus rst, read_status(root));
    if (ist.nspid.empty() || ist.nspid.back() != 1 || rst.nspid.size() != ist.nspid.size())
      return make_error("pid {} is not a child of the PID 1 of its own pid namespace", root);
    queue.push_back(root);
    std::vector<pid_t> others = platform::process_children(init);
    std::sort(others.begin(), others.end());
    for (pid_t p : others)
      if (p != root) queue.push_back(p);
  } else {
    queue.push_back(root);
  }
  std::map<pid_t, std::int32_t> image_pid;  // host -> innermost
  while (!queue.empty()) {
    pid_t host = queue.front();
    queue.pop_front();
    auto st = read_status(host);
    auto fields = read_stat_fields(host);
    if (!st.ok() || !fields.ok() || fields->size() < 53) {
      if (host == root) return make_error("no such process");
      out.vanished = true;
      continue;
    }
    Member m;
    m.host = host;
    m.p.pid = st->nspid.empty() ? host : st->nspid.back();
    m.p.sid = st->nssid.empty() ? 0 : st->nssid.back();
    m.p.pgid = st->nspgid.empty() ? 0 : st->nspgid.back();
    m.p.zombie = st->state == 'Z' || st->state == 'X';
    m.p.exit_status = m.p.zombie ? static_cast<std::int32_t>(std::stol((*fields)[52])) : 0;
    m.comm = (*fields)[2];
    if (m.comm.size() >= 2 && m.comm.front() == '(') m.comm = m.comm.substr(1, m.comm.size() - 2);
    pid_t host_ppid = static_cast<pid_t>(std::stol((*fields)[4]));
    auto parent = image_pid.find(host_ppid);
    m.p.ppid = host == root || parent == image_pid.end() ? 0 : parent->second;
    // A zombie whose parent is not in the tree is reaped by that parent (the job's init):
    // nothing of it is left to carry.
    if (m.p.zombie && m.p.ppid == 0) {
      if (host == root) return make_error("it is a zombie (exited, not reaped)");
      continue;
    }
    image_pid[host] = m.p.pid;
    std::vector<pid_t> kids = platform::process_children(host);
    std::sort(kids.begin(), kids.end());
    for (pid_t k : kids) queue.push_back(k);
    out.members.push_back(std::move(m));
  }
  return out;
}

bool same_tree(const std::vector<Member>& a, const std::vector<Member>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); i++)
    if (a[i].host != b[i].host || a[i].p.zombie != b[i].p.zombie || a[i].p.ppid != b[i].p.ppid ||
        a[i].p.pgid != b[i].p.pgid || a[i].p.sid != b[i].p.sid)
      return false;
  return true;
}

// What the restore cannot rebuild, found before anything is touched: a session whose leader is
// not in the tree, for a process other than the main one (the main process's session and group
// are rebuilt with placeholders, session.cpp; other groups whose leader is gone too, restore.cpp).
Status check_rebuildable(const std::vector<Member>& ms) {
  std::set<std::int32_t> pids;
  for (const Member& m : ms) pids.insert(m.p.pid);
  const TreeProcess& main = ms.front().p;
  for (std::size_t i = 1; i < ms.size(); i++) {
    const TreeProcess& p = ms[i].p;
    if (p.sid != 0 && p.sid != 1 && p.sid != main.sid && pids.count(p.sid) == 0)
      return make_error("{}: its session {} has no leader in the tree, which the restore cannot rebuild",
                        name_of(ms[i]), p.sid);
    // A group whose leader is gone is rebuilt with a placeholder (restore.cpp), in the session of
    // its first member's parent: refused when that is not the member's session.
  }
  return ok_status();
}

// Two live processes of the tree sharing one address space (CLONE_VM without CLONE_THREAD: a
// vfork or posix_spawn child before its exec): they cannot be carried as two images. Usually
// over in microseconds (the child execs), so the dump tries again; persistent sharing is refused.
Status check_no_shared_vm(const std::vector<Member>& ms) {
  for (std::size_t i = 0; i < ms.size(); i++) {
    if (ms[i].p.zombie) continue;
    for (std::size_t j = i + 1; j < ms.size(); j++) {
      if (ms[j].p.zombie) continue;
      if (::syscall(SYS_kcmp, ms[i].host, ms[j].host, KCMP_VM, 0, 0) == 0)
        return make_error("{} and {} share one address space (a vfork or CLONE_VM child before its exec), "
                          "which cannot be carried", name_of(ms[i]), name_of(ms[j]));
    }
  }
  return ok_status();
}

// Gone, or a zombie, since it was surveyed: the tree changed (worth another try), not a refusal.
bool vanished(pid_t host) {
  auto now = read_status(host);
  return !now.ok() || now->state == 'Z' || now->state == 'X';
}

// *changed is set (and ok returned) when a member vanished while being checked.
Status preflight_members(const std::vector<Member>& ms, const CheckpointOptions& tree_opts, bool* changed) {
  // Stand-ins are counted for the tree as a whole (a pipe between two of its processes needs none).
  CheckpointOptions opts = tree_opts;
  opts.refuse_stand_ins_beyond_stdio = false;
  opts.refuse_stand_ins_beyond_stdio = false;
  std::vector<pid_t> hosts;
  std::vector<std::int32_t> pids;
  for (const Member& m : ms) {
    if (m.p.zombie) continue;
    if (Status s = preflight_checks(m.host, opts); !s.ok()) {
      if (m.host != ms.front().host && vanished(m.host)) {
        *changed = true;
        return ok_status();
      }
      return make_error("{}: {}", name_of(m), s.error().message);
    }
    hosts.push_back(m.host);
    pids.push_back(m.p.pid);
  }
  OSMO_TRY(check_rebuildable(ms));
  OSMO_TRY(check_no_shared_vm(ms));
  if (tree_opts.refuse_stand_ins_beyond_stdio) {
    OSMO_ASSIGN_OR_RETURN(std::vector<std::string> need, tree_stand_ins_beyond_stdio(hosts, pids, opts));
    if (!need.empty())
      return make_error("its restore would need a stand-in for {}, and a restore gives stand-ins only for fds 0-2",
                        fmt::join(need, ", "));
  }
  return ok_status();
}

}  // namespace

Status tree_preflight(pid_t root, const CheckpointOptions& opts) {
  // A process that exits while it is being checked is simply not part of the tree any more.
  for (int attempt = 0; attempt < kFreezeAttempts; attempt++) {
    OSMO_ASSIGN_OR_RETURN(Survey s, survey(root, opts.scope));
    bool changed = s.vanished;
    if (!changed) OSMO_TRY(preflight_members(s.members, opts, &changed));
    if (!changed) return ok_status();
  }
  return make_error("the process tree kept changing (processes forking or exiting) while it was checked");
}

Result<FrozenDump> dump_tree_and_freeze(pid_t root, int out_fd, const CheckpointOptions& tree_opts,
                                        CheckpointStats* stats) {
  // Stand-ins are known only once the pipes between the processes are found (below): each
  // process alone would count them (preflight_members counts them for the tree).
  CheckpointOptions opts = tree_opts;
  opts.refuse_stand_ins_beyond_stdio = false;
  std::vector<Member> members;
  std::vector<std::unique_ptr<ProcDump>> live;
  auto release_all = [&] {
    for (auto it = live.rbegin(); it != live.rend(); ++it) (*it)->release_unchanged();
    live.clear();
  };
  Status transient = ok_status();  // the last refusal that another try may cure (shared memory)
  for (int attempt = 1;; attempt++) {
    if (attempt > kFreezeAttempts) {
      if (!transient.ok()) return transient.take_error();
      return make_error("the process tree kept changing (processes forking or exiting) during {} attempts to "
                        "freeze it", kFreezeAttempts);
    }
    if (!transient.ok()) ::usleep(2000);  // let a vfork child reach its exec
    OSMO_ASSIGN_OR_RETURN(Survey s, survey(root, opts.scope));
    if (s.vanished) continue;
    bool changed = false;
    Status pre = preflight_members(s.members, tree_opts, &changed);
    if (!pre.ok()) {
      if (check_no_shared_vm(s.members).ok()) return pre.take_error();
      transient = std::move(pre);
      continue;
    }
    if (changed) continue;
    // Post-copy's page server reads the pages of one held process (lazy_pages.hpp, the source's
    // HeldPages): a tree's lazy pages would be served from the wrong process. Refused before any
    // process is touched.
    if (opts.lazy_anonymous_pages) {
      std::size_t alive = 0;
      for (const Member& m : s.members) alive += m.p.zombie ? 0 : 1;
      if (alive > 1)
        return make_error("post-copy moves single-process jobs only for now (this one has {} processes); "
                          "move it with --method stop", alive);
    }
    bool retry = false;
    for (const Member& m : s.members) {
      if (m.p.zombie) continue;
      auto d = std::make_unique<ProcDump>();
      d->pid = m.host;
      d->options = &opts;  // refuse_stand_ins_beyond_stdio off: checked for the tree below
      if (Status st = d->seize(); !st.ok()) {
        // Gone (exited) or turned into a zombie since the survey: try again. Anything else is a
        // real refusal.
        release_all();
        if (vanished(m.host)) {
          retry = true;
          break;
        }
        return make_error("{}: {}", name_of(m), st.error().message);
      }
      live.push_back(std::move(d));
    }
    if (retry) continue;
    // Everything is stopped: nothing can fork, exit or reap any more. Same tree as surveyed?
    auto again = survey(root, opts.scope);
    if (again.ok() && !again->vanished && same_tree(s.members, again->members))
      if (Status v = check_no_shared_vm(again->members); !v.ok()) {
        release_all();
        transient = std::move(v);
        continue;
      }
    if (!again.ok() || again->vanished || !same_tree(s.members, again->members)) {
      engine_log().info("tree of pid {} changed while it was being frozen (attempt {}): again", root, attempt);
      release_all();
      continue;
    }
    members = std::move(s.members);
    break;
  }
  auto t_frozen = live.front()->frozen_at;

  Status result = [&]() -> Status {
    std::size_t li = 0;
    for (const Member& m : members) {
      if (m.p.zombie) continue;
      ProcDump& d = *live[li++];
      if (Status s = d.collect(); !s.ok()) return make_error("{}: {}", name_of(m), s.error().message);
    }
    std::vector<std::pair<pid_t, ProcessImage*>> procs;
    for (auto& d : live) procs.emplace_back(d->pid, &d->img);
    OSMO_TRY(fds_link_tree(procs, true));
    if (tree_opts.refuse_stand_ins_beyond_stdio) {
      std::string list;
      for (const auto& [host, img] : procs)
        for (const FdImage& f : img->fds)
          if (stand_in_beyond_stdio(f, tree_opts))
            list += fmt::format("{}{} of process {}", list.empty() ? "" : ", ", describe_fd(f), img->task.pid);
      if (!list.empty())
        return make_error("its restore would need a stand-in for {}, and a restore gives stand-ins only for fds 0-2",
                          list);
    }
    TreeImage tree;
    for (const Member& m : members) tree.procs.push_back(m.p);
    ImageWriter w = ImageWriter::make(out_fd, opts.sink, opts.compress);  // a migration seals straight onto its stream
    OSMO_TRY(w.write_header());
    {
      Encoder e;
      tree_encode(tree, e);
      OSMO_TRY(w.write_section(SectionType::kTree, e.buffer()));
    }
    for (std::size_t i = 0; i < live.size(); i++) {
      Encoder e;
      e.u32(static_cast<std::uint32_t>(i));
      OSMO_TRY(w.write_section(SectionType::kProcess, e.buffer()));
      OSMO_TRY(live[i]->write_metadata(w));
      OSMO_TRY(live[i]->write_blobs(w));
    }
    OSMO_TRY(fault("dump.metadata"));
    CheckpointStats sum;
    for (std::size_t i = 0; i < live.size(); i++) {
      Encoder e;
      e.u32(static_cast<std::uint32_t>(i));
      OSMO_TRY(w.write_section(SectionType::kProcessPages, e.buffer()));
      CheckpointStats one;
      OSMO_TRY(live[i]->write_pages(w, &one));
      sum.pages_scanned += one.pages_scanned;
      sum.pages_written += one.pages_written;
      sum.pages_precopied += one.pages_precopied;
      // Post-copy (one live process, refused above otherwise): the pages it left out.
      if (i == 0) {
        sum.image_pid = one.image_pid;
        sum.lazy_runs = std::move(one.lazy_runs);
      }
    }
    OSMO_TRY(fault("dump.before_end"));
    OSMO_TRY(w.write_end());
    if (stats != nullptr) {
      stats->pages_scanned = sum.pages_scanned;
      stats->pages_written = sum.pages_written;
      stats->pages_precopied = sum.pages_precopied;
      stats->image_pid = sum.image_pid;
      stats->lazy_runs = std::move(sum.lazy_runs);
      stats->image_bytes = w.totals().stored_bytes + kImageHeaderSize;
      stats->stand_ins.clear();
      for (auto& d : live)
        for (const FdImage& f : d->img.fds)
          if (needs_stand_in(f)) stats->stand_ins.push_back(f);
    }
    return ok_status();
  }();
  Status back = ok_status();
  for (auto& d : live)
    if (Status s = d->put_back(); !s.ok() && back.ok()) back = std::move(s);
  if (result.ok()) result = std::move(back);
  if (result.ok()) result = fault("dump.held");
  if (!result.ok()) {
    release_all();
    return result.take_error();
  }
  FrozenDump out;
  for (auto& d : live) out.tracees.push_back(std::move(*d->tracee));
  out.frozen_at = t_frozen;
  return out;
}

void tree_encode(const TreeImage& t, Encoder& e) {
  e.u32(static_cast<std::uint32_t>(t.procs.size()));
  for (const TreeProcess& p : t.procs) {
    e.u32(static_cast<std::uint32_t>(p.pid));
    e.u32(static_cast<std::uint32_t>(p.ppid));
    e.u32(static_cast<std::uint32_t>(p.sid));
    e.u32(static_cast<std::uint32_t>(p.pgid));
    e.u8(p.zombie ? 1 : 0);
    e.u32(static_cast<std::uint32_t>(p.exit_status));
  }
}

Status tree_decode(Decoder& d, TreeImage& t) {
  OSMO_ASSIGN_OR_RETURN(std::uint32_t n, d.count(21));
  if (n == 0) return make_error("image corrupted: a tree of no process");
  std::set<std::int32_t> seen;
  t.procs.resize(n);
  for (std::size_t i = 0; i < n; i++) {
    TreeProcess& p = t.procs[i];
    OSMO_ASSIGN_OR_RETURN(std::uint32_t pid, d.u32());
    OSMO_ASSIGN_OR_RETURN(std::uint32_t ppid, d.u32());
    OSMO_ASSIGN_OR_RETURN(std::uint32_t sid, d.u32());
    OSMO_ASSIGN_OR_RETURN(std::uint32_t pgid, d.u32());
    OSMO_ASSIGN_OR_RETURN(std::uint8_t z, d.u8());
    OSMO_ASSIGN_OR_RETURN(std::uint32_t es, d.u32());
    p.pid = static_cast<std::int32_t>(pid);
    p.ppid = static_cast<std::int32_t>(ppid);
    p.sid = static_cast<std::int32_t>(sid);
    p.pgid = static_cast<std::int32_t>(pgid);
    p.zombie = z != 0;
    p.exit_status = static_cast<std::int32_t>(es);
    if (p.pid <= 1 || p.ppid < 0 || p.sid < 0 || p.pgid < 0 || !seen.insert(p.pid).second)
      return make_error("image corrupted: tree process #{} pid {} parent {}", i, p.pid, p.ppid);
    // Parents come first, so that each parent exists before it clones its children.
    if (p.ppid != 0 && seen.count(p.ppid) == 0)
      return make_error("image corrupted: tree process {} comes before its parent {}", p.pid, p.ppid);
    if (i == 0 && (p.zombie || p.ppid != 0))
      return make_error("image corrupted: the main process {} of the tree is a zombie or has a parent", p.pid);
    if (p.zombie && p.ppid == 0) return make_error("image corrupted: zombie {} has no parent in the tree", p.pid);
  }
  return d.finish();
}

void tree_describe(const TreeImage& t, nlohmann::json& j) {
  auto& a = j["tree"];
  a = nlohmann::json::array();
  for (const TreeProcess& p : t.procs) {
    nlohmann::json o{{"pid", p.pid}, {"ppid", p.ppid}, {"sid", p.sid}, {"pgid", p.pgid},
                     {"state", p.zombie ? "zombie" : "live"}};
    if (p.zombie) o["wait_status"] = p.exit_status;
    a.push_back(std::move(o));
  }
}

}  // namespace osmo::ckpt
