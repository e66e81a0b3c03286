// SPDX-License-Identifier: GPL-2.0-or-later
// Task-wide state: identity (pid, comm, exe, session and process group ids), credentials and
// capabilities, cwd, umask, personality, rlimits, prctl settings, and the clocks the process saw
// at dump (for the time namespace at restore). Sessions are rebuilt by restore.cpp (session.cpp
// plans them). Also the operations table of all kinds and small helpers they share.
#include <fcntl.h>
#include <sys/personality.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>

#include "ckpt/faults.hpp"
#include "ckpt/kinds.hpp"

namespace osmo::ckpt {

const std::vector<KindOps>& kinds() {
  static const std::vector<KindOps> kKinds = {
      {"task", SectionType::kTask, task_dump, task_encode, task_decode, task_describe},
      {"mm", SectionType::kMm, mm_dump, mm_encode, mm_decode, mm_describe},
      {"regs", SectionType::kRegs, regs_dump, regs_encode, regs_decode, regs_describe},
      {"signals", SectionType::kSignals, sig_dump, sig_encode, sig_decode, sig_describe},
      {"fds", SectionType::kFds, fds_dump, fds_encode, fds_decode, fds_describe},
      {"timers", SectionType::kTimers, timers_dump, timers_encode, timers_decode, timers_describe},
      {"thread-misc", SectionType::kThreadMisc, thread_dump, thread_encode, thread_decode,
       thread_describe},
      // After fds: a leader's controlling terminal is read through one of its fds on it.
      {"terminal", SectionType::kTerminal, terminal_dump, terminal_encode, terminal_decode,
       terminal_describe},
      // Memory last: its dump reads the final maps, and its pages follow the metadata.
      {"vmas", SectionType::kVmas, mem_dump, mem_encode, mem_decode, mem_describe},
  };
  return kKinds;
}

std::string hex(std::uint64_t v) { return fmt::format("{:#x}", v); }

Result<FileIdentity> stat_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error("cannot stat {}", path);
  FileIdentity f;
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  f.size = static_cast<std::uint64_t>(st.st_size);
  f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  f.mode = st.st_mode;
  return f;
}

Status verify_identity(const std::string& what, const std::string& path, const FileIdentity& want,
                       bool verify_inode) {
  auto got = stat_identity(path);
  if (!got.ok()) return Error{got.error().code, fmt::format("{} {} is gone", what, path)};
  if (got->size != want.size || got->mtime_ns != want.mtime_ns)
    return make_error("{} {} changed since the checkpoint (size {} -> {}, mtime {} -> {})", what, path,
                      want.size, got->size, want.mtime_ns, got->mtime_ns);
  if (verify_inode && (got->ino != want.ino || got->dev != want.dev))
    return make_error("{} {} is a different file than at checkpoint (dev:inode {}:{} -> {}:{})", what,
                      path, want.dev, want.ino, got->dev, got->ino);
  return ok_status();
}

void encode_identity(Encoder& e, const FileIdentity& f) {
  e.u64(f.dev);
  e.u64(f.ino);
  e.u64(f.size);
  e.i64(f.mtime_ns);
  e.u32(f.mode);
}
Status decode_identity(Decoder& d, FileIdentity* f) {
  OSMO_ASSIGN_OR_RETURN(f->dev, d.u64());
  OSMO_ASSIGN_OR_RETURN(f->ino, d.u64());
  OSMO_ASSIGN_OR_RETURN(f->size, d.u64());
  OSMO_ASSIGN_OR_RETURN(f->mtime_ns, d.i64());
  OSMO_ASSIGN_OR_RETURN(f->mode, d.u32());
  return ok_status();
}

Status task_preflight(pid_t pid, const ProcStatus& st) {
  if (pid == ::getpid()) return make_error("it is this osmo process itself");
  if (st.state == 'Z' || st.state == 'X') return make_error("it is a zombie (exited, not reaped)");
  if (st.state == 'T' || st.state == 't')
    return make_error("it is stopped (state {}); continue it first", st.state);
  if (st.threads != 1)
    return make_error("it has {} threads (only single-threaded processes are supported)", st.threads);
  if (st.tracer_pid != 0) return make_error("it is already traced by pid {}", st.tracer_pid);
  if (auto timers = read_text_file(fmt::format("/proc/{}/timers", pid)); timers.ok() && !timers->empty())
    return make_error("it has POSIX timers (timer_create), which are not supported");
  auto cwd = read_link(fmt::format("/proc/{}/cwd", pid));
  if (!cwd.ok()) return cwd.take_error();
  if (cwd->size() > 10 && cwd->compare(cwd->size() - 10, 10, " (deleted)") == 0)
    return make_error("its working directory {} was deleted", *cwd);
  return ok_status();
}

// /proc/PID/limits rather than prlimit(): reading another uid's limits with prlimit needs
// CAP_SYS_RESOURCE, which containers often drop. Rows are in RLIMIT_* order.
Result<std::vector<std::array<std::uint64_t, 2>>> read_limits(pid_t pid) {
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file(fmt::format("/proc/{}/limits", pid)));
  std::vector<std::array<std::uint64_t, 2>> out;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line) && out.size() < RLIM_NLIMITS) {
    if (line.size() < 26) continue;
    std::istringstream v(line.substr(26));
    std::string cur, max;
    v >> cur >> max;
    auto num = [](const std::string& x) -> std::uint64_t {
      return x == "unlimited" ? RLIM_INFINITY : std::stoull(x);
    };
    out.push_back({num(cur), num(max)});
  }
  if (out.size() != RLIM_NLIMITS)
    return make_error("/proc/{}/limits has {} rows, expected {}", pid, out.size(), RLIM_NLIMITS);
  return out;
}

Status task_dump(DumpContext& c) {
  TaskImage& t = c.img->task;
  t.pid = c.status.nspid.back();
  OSMO_ASSIGN_OR_RETURN(std::string comm, read_text_file(fmt::format("/proc/{}/comm", c.pid)));
  while (!comm.empty() && comm.back() == '\n') comm.pop_back();
  t.comm = comm;
  OSMO_ASSIGN_OR_RETURN(t.exe_path, read_link(fmt::format("/proc/{}/exe", c.pid)));
  OSMO_ASSIGN_OR_RETURN(t.exe_id, stat_identity(fmt::format("/proc/{}/exe", c.pid)));
  OSMO_ASSIGN_OR_RETURN(t.cwd, read_link(fmt::format("/proc/{}/cwd", c.pid)));
  t.umask = c.status.umask;
  OSMO_ASSIGN_OR_RETURN(std::string pers, read_text_file(fmt::format("/proc/{}/personality", c.pid)));
  t.personality = static_cast<std::uint32_t>(std::stoul(pers, nullptr, 16));
  for (int i = 0; i < 3; i++) {
    t.uid[i] = c.status.uid[i];
    t.gid[i] = c.status.gid[i];
  }
  t.groups = c.status.groups;
  // Innermost values: the ids as the process itself sees them (0 if the leader is outside).
  t.sid = c.status.nssid.empty() ? 0 : c.status.nssid.back();
  t.pgid = c.status.nspgid.empty() ? 0 : c.status.nspgid.back();
  t.cap_inh = c.status.cap_inh;
  t.cap_prm = c.status.cap_prm;
  t.cap_eff = c.status.cap_eff;
  t.cap_bnd = c.status.cap_bnd;
  t.cap_amb = c.status.cap_amb;
  OSMO_ASSIGN_OR_RETURN(t.rlimits, read_limits(c.pid));
  timens_read_clocks(c.pid, &t.monotonic_ns, &t.boottime_ns);
  Tracee& tr = *c.tracee;
  OSMO_ASSIGN_OR_RETURN(long nnp, tr.syscall_ok("prctl(PR_GET_NO_NEW_PRIVS)", SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  OSMO_ASSIGN_OR_RETURN(long dumpable, tr.syscall_ok("prctl(PR_GET_DUMPABLE)", SYS_prctl, PR_GET_DUMPABLE));
  OSMO_ASSIGN_OR_RETURN(long thp, tr.syscall_ok("prctl(PR_GET_THP_DISABLE)", SYS_prctl, PR_GET_THP_DISABLE, 0, 0, 0, 0));
  OSMO_ASSIGN_OR_RETURN(long mce, tr.syscall_ok("prctl(PR_MCE_KILL_GET)", SYS_prctl, PR_MCE_KILL_GET, 0, 0, 0, 0));
  OSMO_ASSIGN_OR_RETURN(long slack, tr.syscall_ok("prctl(PR_GET_TIMERSLACK)", SYS_prctl, PR_GET_TIMERSLACK));
  OSMO_ASSIGN_OR_RETURN(long secbits, tr.syscall_ok("prctl(PR_GET_SECUREBITS)", SYS_prctl, PR_GET_SECUREBITS));
  t.securebits = static_cast<std::uint32_t>(secbits);
  OSMO_TRY(tr.syscall_ok("prctl(PR_GET_CHILD_SUBREAPER)", SYS_prctl, PR_GET_CHILD_SUBREAPER, c.scratch_data()));
  int subreaper = 0;
  OSMO_TRY(tr.read_mem(c.scratch_data(), &subreaper, sizeof subreaper));
  t.no_new_privs = static_cast<std::uint32_t>(nnp);
  t.dumpable = static_cast<std::uint32_t>(dumpable);
  t.thp_disable = static_cast<std::uint32_t>(thp);
  t.mce_kill = static_cast<std::uint32_t>(mce);
  t.timer_slack_ns = static_cast<std::uint64_t>(slack);
  t.child_subreaper = subreaper != 0 ? 1 : 0;
  return fault("dump.misc");
}

void task_encode(const ProcessImage& img, Encoder& e) {
  const TaskImage& t = img.task;
  e.u32(static_cast<std::uint32_t>(t.pid));
  e.str(t.comm);
  e.str(t.exe_path);
  encode_identity(e, t.exe_id);
  e.str(t.cwd);
  e.u32(t.umask);
  e.u32(t.personality);
  for (int i = 0; i < 3; i++) e.u32(t.uid[i]);
  for (int i = 0; i < 3; i++) e.u32(t.gid[i]);
  e.u32(static_cast<std::uint32_t>(t.groups.size()));
  for (auto g : t.groups) e.u32(g);
  e.u32(static_cast<std::uint32_t>(t.rlimits.size()));
  for (auto& r : t.rlimits) {
    e.u64(r[0]);
    e.u64(r[1]);
  }
  e.i64(t.monotonic_ns);
  e.i64(t.boottime_ns);
  for (auto v : {t.no_new_privs, t.dumpable, t.child_subreaper, t.thp_disable, t.mce_kill}) e.u32(v);
  e.u64(t.timer_slack_ns);
  e.u32(static_cast<std::uint32_t>(t.sid));
  e.u32(static_cast<std::uint32_t>(t.pgid));
  for (auto v : {t.cap_inh, t.cap_prm, t.cap_eff, t.cap_bnd, t.cap_amb}) e.u64(v);
  e.u32(t.securebits);
}

Status task_decode(Decoder& d, ProcessImage& img) {
  TaskImage& t = img.task;
  OSMO_ASSIGN_OR_RETURN(std::uint32_t pid, d.u32());
  t.pid = static_cast<std::int32_t>(pid);
  OSMO_ASSIGN_OR_RETURN(t.comm, d.str());
  OSMO_ASSIGN_OR_RETURN(t.exe_path, d.str());
  OSMO_TRY(decode_identity(d, &t.exe_id));
  OSMO_ASSIGN_OR_RETURN(t.cwd, d.str());
  OSMO_ASSIGN_OR_RETURN(t.umask, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.personality, d.u32());
  for (int i = 0; i < 3; i++) {
    OSMO_ASSIGN_OR_RETURN(t.uid[i], d.u32());
  }
  for (int i = 0; i < 3; i++) {
    OSMO_ASSIGN_OR_RETURN(t.gid[i], d.u32());
  }
  OSMO_ASSIGN_OR_RETURN(std::uint32_t ng, d.count(4));
  t.groups.resize(ng);
  for (auto& g : t.groups) {
    OSMO_ASSIGN_OR_RETURN(g, d.u32());
  }
  OSMO_ASSIGN_OR_RETURN(std::uint32_t nr, d.count(16));
  t.rlimits.resize(nr);
  for (auto& r : t.rlimits) {
    OSMO_ASSIGN_OR_RETURN(r[0], d.u64());
    OSMO_ASSIGN_OR_RETURN(r[1], d.u64());
  }
  OSMO_ASSIGN_OR_RETURN(t.monotonic_ns, d.i64());
  OSMO_ASSIGN_OR_RETURN(t.boottime_ns, d.i64());
  for (auto* p : {&t.no_new_privs, &t.dumpable, &t.child_subreaper, &t.thp_disable, &t.mce_kill}) {
    OSMO_ASSIGN_OR_RETURN(*p, d.u32());
  }
  OSMO_ASSIGN_OR_RETURN(t.timer_slack_ns, d.u64());
  OSMO_ASSIGN_OR_RETURN(std::uint32_t sid, d.u32());
  OSMO_ASSIGN_OR_RETURN(std::uint32_t pgid, d.u32());
  t.sid = static_cast<std::int32_t>(sid);
  t.pgid = static_cast<std::int32_t>(pgid);
  for (auto* p : {&t.cap_inh, &t.cap_prm, &t.cap_eff, &t.cap_bnd, &t.cap_amb}) {
    OSMO_ASSIGN_OR_RETURN(*p, d.u64());
  }
  OSMO_ASSIGN_OR_RETURN(t.securebits, d.u32());
  if (t.pid <= 0) return make_error("image corrupted: task pid {}", t.pid);
  if (t.sid < 0 || t.pgid < 0) return make_error("image corrupted: session {} / process group {}", t.sid, t.pgid);
  if ((t.cap_eff & ~t.cap_prm) != 0 || (t.cap_amb & ~(t.cap_prm & t.cap_inh)) != 0)
    return make_error("image corrupted: capability sets eff {:#x} prm {:#x} inh {:#x} amb {:#x}", t.cap_eff,
                      t.cap_prm, t.cap_inh, t.cap_amb);
  return d.finish();
}

void task_describe(const ProcessImage& img, nlohmann::json& j) {
  const TaskImage& t = img.task;
  auto& o = j["task"];
  o["pid"] = t.pid;
  o["comm"] = t.comm;
  o["exe"] = t.exe_path;
  o["cwd"] = t.cwd;
  o["umask"] = fmt::format("{:04o}", t.umask);
  o["personality"] = hex(t.personality);
  o["uid"] = t.uid;
  o["gid"] = t.gid;
  o["groups"] = t.groups;
  auto& rl = o["rlimits"];
  rl = nlohmann::json::array();
  for (auto& r : t.rlimits) rl.push_back({r[0] == RLIM_INFINITY ? -1.0 : static_cast<double>(r[0]),
                                          r[1] == RLIM_INFINITY ? -1.0 : static_cast<double>(r[1])});
  o["monotonic_ns"] = t.monotonic_ns;
  o["boottime_ns"] = t.boottime_ns;
  o["sid"] = t.sid;
  o["pgid"] = t.pgid;
  o["caps"] = {{"inheritable", hex(t.cap_inh)}, {"permitted", hex(t.cap_prm)}, {"effective", hex(t.cap_eff)},
               {"bounding", hex(t.cap_bnd)}, {"ambient", hex(t.cap_amb)}, {"securebits", hex(t.securebits)}};
  o["prctl"] = {{"no_new_privs", t.no_new_privs}, {"dumpable", t.dumpable}, {"child_subreaper", t.child_subreaper},
                {"thp_disable", t.thp_disable}, {"mce_kill", t.mce_kill}, {"timer_slack_ns", t.timer_slack_ns}};
}

Status task_child_prepare(const ProcessImage& img) {
  const TaskImage& t = img.task;
  if (::chdir(t.cwd.c_str()) != 0) return errno_error("cannot chdir to {}", t.cwd);
  ::umask(t.umask);
  if (::personality(t.personality) < 0) return errno_error("cannot set personality {:#x}", t.personality);
  if (::prctl(PR_SET_NAME, t.comm.c_str(), 0, 0, 0) != 0) return errno_error("cannot set comm {}", t.comm);
  return ok_status();
}

Status task_restore_limits(RestoreContext& c) {
  const auto& lims = c.img->task.rlimits;
  for (std::size_t r = 0; r < lims.size() && r < RLIM_NLIMITS; r++) {
    rlimit lim{lims[r][0], lims[r][1]};
    if (::prlimit(c.pid, static_cast<__rlimit_resource>(r), &lim, nullptr) != 0)
      return errno_error("cannot set rlimit {} of restored pid {}", r, c.pid);
  }
  return ok_status();
}

namespace {

// capget/capset arguments, _LINUX_CAPABILITY_VERSION_3: two 32-bit halves of each set.
struct CapHeader {
  std::uint32_t version;
  std::int32_t pid;
};
struct CapData {
  std::uint32_t effective, permitted, inheritable;
};
struct CapArgs {
  CapHeader header;
  CapData data[2];
};
constexpr std::uint32_t kCapVersion3 = 0x20080522;

Status inject_capset(RestoreContext& c, std::uint64_t eff, std::uint64_t prm, std::uint64_t inh,
                     const char* what) {
  auto lo = [](std::uint64_t v) { return static_cast<std::uint32_t>(v); };
  auto hi = [](std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32); };
  CapArgs a{{kCapVersion3, 0}, {{lo(eff), lo(prm), lo(inh)}, {hi(eff), hi(prm), hi(inh)}}};
  OSMO_TRY(c.tracee->write_mem(c.data, &a, sizeof a));
  OSMO_TRY(c.tracee->syscall_ok(what, SYS_capset, c.data, c.data + sizeof(CapHeader)));
  return ok_status();
}

Result<int> cap_last_cap() {
  OSMO_ASSIGN_OR_RETURN(std::string text, read_text_file("/proc/sys/kernel/cap_last_cap"));
  int last = -1;
  try {
    last = std::stoi(text);
  } catch (const std::exception&) {
  }
  if (last < 0 || last > 63) return make_error("unexpected /proc/sys/kernel/cap_last_cap '{}'", text);
  return last;
}

}  // namespace

Status task_check_restorable(const ProcessImage& img) {
  // The new process starts with our credentials, and capabilities can only be given up: an
  // image holding one we lack cannot be restored faithfully, so it is refused here.
  const TaskImage& t = img.task;
  OSMO_ASSIGN_OR_RETURN(ProcStatus self, read_status(::getpid()));
  if ((t.cap_prm & ~self.cap_prm) != 0)
    return make_error("the image's permitted capabilities {:#x} include {:#x}, which this restorer lacks",
                      t.cap_prm, t.cap_prm & ~self.cap_prm);
  if ((t.cap_bnd & ~self.cap_bnd) != 0)
    return make_error("the image's bounding set {:#x} includes {:#x}, outside this restorer's bounding set",
                      t.cap_bnd, t.cap_bnd & ~self.cap_bnd);
  if ((t.cap_inh & ~(self.cap_inh | self.cap_bnd)) != 0)
    return make_error("the image's inheritable capabilities {:#x} include {:#x}, outside this restorer's bounding set",
                      t.cap_inh, t.cap_inh & ~(self.cap_inh | self.cap_bnd));
  return ok_status();
}

// Credentials, capabilities and securebits, in the only order that works without ever holding
// more than the image allows at the end (the new process starts with the restorer's full set):
//   1. inheritable set (capset; may name capabilities outside permitted while we hold
//      CAP_SETPCAP) -- before the bounding set shrinks, which would forbid it;
//   2. bounding set: PR_CAPBSET_DROP for what the image lacks (needs CAP_SETPCAP);
//   3. securebits = NO_SETUID_FIXUP for now, so the uid change below keeps every capability
//      (root -> non-root would otherwise clear permitted, effective and ambient);
//   4. groups, gids, uids;
//   5. ambient raises (need the capability in permitted, still full, and inheritable), before
//      the image's securebits, which may forbid raising (NO_CAP_AMBIENT_RAISE);
//   6. the image's securebits (needs CAP_SETPCAP, still effective; may lock);
//   7. capset to the image's effective/permitted/inheritable: permitted shrinks, and from here
//      on the process holds exactly what it held at dump (ambient keeps what permitted and
//      inheritable allow, which the image's ambient is within);
//   8. prctl settings (the uid change reset dumpable), no_new_privs last.
// Before this, a restored process came back with the restorer's full capability set whatever it
// had dropped -- a privilege regain for any sandboxed process.
Status task_restore_creds(RestoreContext& c) {
  OSMO_TRY(fault("restore.creds"));
  const TaskImage& t = c.img->task;
  Tracee& tr = *c.tracee;
  OSMO_ASSIGN_OR_RETURN(ProcStatus now, read_status(c.pid));
  OSMO_TRY(inject_capset(c, now.cap_eff, now.cap_prm, t.cap_inh, "capset (inheritable set)"));
  OSMO_ASSIGN_OR_RETURN(int last_cap, cap_last_cap());
  std::vector<SyscallReq> drops;
  for (int cap = 0; cap <= last_cap; cap++) {
    std::uint64_t bit = 1ull << cap;
    if ((now.cap_bnd & bit) == 0 || (t.cap_bnd & bit) != 0) continue;
    SyscallReq q;
    q.nr = SYS_prctl;
    q.a[0] = PR_CAPBSET_DROP;
    q.a[1] = static_cast<std::uint64_t>(cap);
    q.what = "prctl(PR_CAPBSET_DROP)";
    drops.push_back(q);
  }
  OSMO_TRY(tr.syscall_batch(drops));
  OSMO_TRY(tr.syscall_ok("prctl(PR_SET_SECUREBITS, NO_SETUID_FIXUP)", SYS_prctl, PR_SET_SECUREBITS,
                         SECBIT_NO_SETUID_FIXUP));

  std::vector<gid_t> groups(t.groups.begin(), t.groups.end());
  if (groups.size() * sizeof(gid_t) > kTrampSize - kTrampDataOffset)
    return make_error("too many supplementary groups ({})", groups.size());
  if (!groups.empty()) OSMO_TRY(tr.write_mem(c.data, groups.data(), groups.size() * sizeof(gid_t)));
  OSMO_TRY(tr.syscall_ok("setgroups", SYS_setgroups, groups.size(), c.data));
  OSMO_TRY(tr.syscall_ok("setresgid", SYS_setresgid, t.gid[0], t.gid[1], t.gid[2]));
  OSMO_TRY(tr.syscall_ok("setresuid", SYS_setresuid, t.uid[0], t.uid[1], t.uid[2]));

  for (int cap = 0; cap <= last_cap; cap++)
    if ((t.cap_amb >> cap) & 1)
      OSMO_TRY(tr.syscall_ok("prctl(PR_CAP_AMBIENT_RAISE)", SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE,
                             static_cast<std::uint64_t>(cap), 0, 0));
  OSMO_TRY(tr.syscall_ok("prctl(PR_SET_SECUREBITS)", SYS_prctl, PR_SET_SECUREBITS, t.securebits));
  OSMO_TRY(inject_capset(c, t.cap_eff, t.cap_prm, t.cap_inh, "capset (the image's sets)"));

  // prctl settings after the uid change (which resets dumpable); no_new_privs last.
  OSMO_TRY(tr.syscall_ok("prctl(PR_SET_THP_DISABLE)", SYS_prctl, PR_SET_THP_DISABLE, t.thp_disable, 0, 0, 0));
  OSMO_TRY(tr.syscall_ok("prctl(PR_SET_TIMERSLACK)", SYS_prctl, PR_SET_TIMERSLACK, t.timer_slack_ns));
  if (t.mce_kill == PR_MCE_KILL_DEFAULT) {
    OSMO_TRY(tr.syscall_ok("prctl(PR_MCE_KILL_CLEAR)", SYS_prctl, PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0, 0, 0));
  } else {
    OSMO_TRY(tr.syscall_ok("prctl(PR_MCE_KILL)", SYS_prctl, PR_MCE_KILL, PR_MCE_KILL_SET, t.mce_kill, 0, 0));
  }
  OSMO_TRY(tr.syscall_ok("prctl(PR_SET_CHILD_SUBREAPER)", SYS_prctl, PR_SET_CHILD_SUBREAPER, t.child_subreaper));
  // SUID_DUMP_ROOT (2) cannot be set from user space; 1 is the closest.
  OSMO_TRY(tr.syscall_ok("prctl(PR_SET_DUMPABLE)", SYS_prctl, PR_SET_DUMPABLE, t.dumpable == 0 ? 0 : 1));
  if (t.no_new_privs != 0)
    OSMO_TRY(tr.syscall_ok("prctl(PR_SET_NO_NEW_PRIVS)", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  return ok_status();
}

}  // namespace osmo::ckpt
