// SPDX-License-Identifier: GPL-2.0-or-later
// Signals: all 64 dispositions (read by injecting rt_sigaction, which ptrace cannot see), the
// blocked mask, pending signals of the thread and of the process (PTRACE_PEEKSIGINFO, full
// siginfo), and the sigaltstack. At restore, dispositions and the altstack are installed by the
// new process itself before it parks (they are plain values to the kernel); pending signals are
// queued back by injected rt_(tg)sigqueueinfo to itself, which keeps any si_code.
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "ckpt/faults.hpp"
#include "ckpt/kinds.hpp"

namespace osmo::ckpt {
namespace {

struct KernelSigaction {
  std::uint64_t handler, flags, restorer, mask;
};
// struct ptrace_peeksiginfo_args of <linux/ptrace.h>, which clashes with <sys/ptrace.h>.
struct PeekSiginfoArgs {
  std::uint64_t off;
  std::uint32_t flags;
  std::int32_t nr;
};
constexpr std::uint32_t kPeekShared = 1;  // PTRACE_PEEKSIGINFO_SHARED

struct KernelStack {
  std::uint64_t sp;
  std::int32_t flags;
  std::int32_t pad;
  std::uint64_t size;
};

}  // namespace

Status sig_peek_pending(pid_t pid, bool shared, std::vector<SiginfoImage>* out) {
  for (std::uint64_t off = 0;; off++) {
    PeekSiginfoArgs a{off, shared ? kPeekShared : 0u, 1};
    siginfo_t si{};
    long n = ptrace(PTRACE_PEEKSIGINFO, pid, &a, &si);
    if (n < 0) return errno_error("cannot read pending signals of pid {} (PTRACE_PEEKSIGINFO)", pid);
    if (n == 0) return ok_status();
    SiginfoImage s;
    std::memcpy(s.bytes.data(), &si, sizeof si);
    s.shared = shared;
    out->push_back(s);
    if (out->size() > 4096) return make_error("pid {} has more than 4096 pending signals", pid);
  }
}

Status sig_save_sigtrap(DumpContext& c) {
  KernelSigaction ka{};
  OSMO_TRY(c.tracee->syscall_ok("rt_sigaction (SIGTRAP, read)", SYS_rt_sigaction, SIGTRAP, 0, c.scratch_data(), 8));
  OSMO_TRY(c.tracee->read_mem(c.scratch_data(), &ka, sizeof ka));
  c.sigtrap_action = {ka.handler, ka.flags, ka.restorer, ka.mask};
  c.sigtrap_saved = true;
  return ok_status();
}

Status sig_put_back_sigtrap(Tracee& t, std::uint64_t scratch_data, const std::array<std::uint64_t, 4>& action) {
  KernelSigaction ka{action[0], action[1], action[2], action[3]};
  OSMO_TRY(t.write_mem(scratch_data, &ka, sizeof ka));
  OSMO_ASSIGN_OR_RETURN(long rv, t.syscall_no_trap(SYS_rt_sigaction, SIGTRAP, scratch_data, 0, 8));
  if (rv != 0) return Error{static_cast<int>(-rv), fmt::format("cannot set SIGTRAP's disposition back in pid {}", t.pid())};
  return ok_status();
}

Status sig_restore_sigtrap(RestoreContext& c) {
  const SigactionImage& a = c.img->sig.actions[SIGTRAP - 1];
  return sig_put_back_sigtrap(*c.tracee, c.data, {a.handler, a.flags, a.restorer, a.mask});
}

Status sig_dump(DumpContext& c) {
  SignalsImage& s = c.img->sig;
  Tracee& t = *c.tracee;
  s.blocked = c.original_sigmask;
  // Signals we took off the thread while stopping it go back to its own queue first.
  for (const siginfo_t& si : c.stolen) {
    OSMO_TRY(t.write_mem(c.scratch_data(), &si, sizeof si));
    OSMO_TRY(t.syscall_ok("rt_tgsigqueueinfo (requeue)", SYS_rt_tgsigqueueinfo, c.img->task.pid,
                          c.img->task.pid, static_cast<std::uint64_t>(si.si_signo), c.scratch_data()));
  }
  c.stolen.clear();
  // All 64 dispositions in one batch (reading SIGKILL/SIGSTOP's is allowed and harmless).
  std::vector<SyscallReq> reqs;
  for (int sig = 1; sig <= 64; sig++) {
    SyscallReq q;
    q.nr = SYS_rt_sigaction;
    q.a[0] = static_cast<std::uint64_t>(sig);
    q.a[2] = c.scratch + kTrampSigOffset + static_cast<std::uint64_t>(sig - 1) * sizeof(KernelSigaction);
    q.a[3] = 8;
    q.what = "rt_sigaction (read)";
    reqs.push_back(q);
  }
  OSMO_TRY(t.syscall_batch(reqs));
  std::array<KernelSigaction, 64> kas{};
  OSMO_TRY(t.read_mem(c.scratch + kTrampSigOffset, kas.data(), sizeof kas));
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const KernelSigaction& ka = kas[static_cast<std::size_t>(sig - 1)];
    s.actions[static_cast<std::size_t>(sig - 1)] = {ka.handler, ka.flags, ka.restorer, ka.mask};
  }
  // What our int3s left in SIGTRAP's slot may be SIG_DFL; the disposition read before them is
  // the process's own.
  if (c.sigtrap_saved)
    s.actions[SIGTRAP - 1] = {c.sigtrap_action[0], c.sigtrap_action[1], c.sigtrap_action[2], c.sigtrap_action[3]};
  OSMO_TRY(t.syscall_ok("sigaltstack (read)", SYS_sigaltstack, 0, c.scratch_data()));
  KernelStack ks{};
  OSMO_TRY(t.read_mem(c.scratch_data(), &ks, sizeof ks));
  s.altstack_sp = ks.sp;
  s.altstack_size = ks.size;
  s.altstack_flags = static_cast<std::uint32_t>(ks.flags);
  s.pending.clear();
  OSMO_TRY(sig_peek_pending(c.pid, false, &s.pending));
  OSMO_TRY(sig_peek_pending(c.pid, true, &s.pending));
  return fault("dump.signals");
}

void sig_encode(const ProcessImage& img, Encoder& e) {
  const SignalsImage& s = img.sig;
  for (auto& a : s.actions) {
    e.u64(a.handler);
    e.u64(a.flags);
    e.u64(a.restorer);
    e.u64(a.mask);
  }
  e.u64(s.blocked);
  e.u32(static_cast<std::uint32_t>(s.pending.size()));
  for (auto& p : s.pending) {
    e.u8(p.shared ? 1 : 0);
    e.raw(p.bytes.data(), p.bytes.size());
  }
  e.u64(s.altstack_sp);
  e.u64(s.altstack_size);
  e.u32(s.altstack_flags);
}

Status sig_decode(Decoder& d, ProcessImage& img) {
  SignalsImage& s = img.sig;
  for (auto& a : s.actions) {
    OSMO_ASSIGN_OR_RETURN(a.handler, d.u64());
    OSMO_ASSIGN_OR_RETURN(a.flags, d.u64());
    OSMO_ASSIGN_OR_RETURN(a.restorer, d.u64());
    OSMO_ASSIGN_OR_RETURN(a.mask, d.u64());
  }
  OSMO_ASSIGN_OR_RETURN(s.blocked, d.u64());
  OSMO_ASSIGN_OR_RETURN(std::uint32_t n, d.count(129));
  s.pending.resize(n);
  for (auto& p : s.pending) {
    OSMO_ASSIGN_OR_RETURN(std::uint8_t sh, d.u8());
    p.shared = sh != 0;
    OSMO_TRY(d.raw(p.bytes.data(), p.bytes.size()));
  }
  OSMO_ASSIGN_OR_RETURN(s.altstack_sp, d.u64());
  OSMO_ASSIGN_OR_RETURN(s.altstack_size, d.u64());
  OSMO_ASSIGN_OR_RETURN(s.altstack_flags, d.u32());
  return d.finish();
}

void sig_describe(const ProcessImage& img, nlohmann::json& j) {
  const SignalsImage& s = img.sig;
  auto& o = j["signals"];
  o["blocked"] = hex(s.blocked);
  auto& acts = o["handlers"];
  acts = nlohmann::json::object();
  for (int sig = 1; sig <= 64; sig++) {
    const auto& a = s.actions[static_cast<std::size_t>(sig - 1)];
    if (a.handler == 0 && a.flags == 0 && a.mask == 0) continue;  // SIG_DFL, nothing special
    acts[std::to_string(sig)] = {{"handler", a.handler == 1 ? "SIG_IGN" : hex(a.handler)},
                                 {"flags", hex(a.flags)},
                                 {"mask", hex(a.mask)}};
  }
  auto& p = o["pending"];
  p = nlohmann::json::array();
  for (auto& si : s.pending) {
    siginfo_t info;
    std::memcpy(&info, si.bytes.data(), sizeof info);
    p.push_back({{"signo", info.si_signo}, {"code", info.si_code}, {"shared", si.shared}});
  }
  o["altstack"] = {{"sp", hex(s.altstack_sp)}, {"size", s.altstack_size}, {"flags", s.altstack_flags}};
}

Status sig_child_prepare(const ProcessImage& img) {
  const SignalsImage& s = img.sig;
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const auto& a = s.actions[static_cast<std::size_t>(sig - 1)];
    KernelSigaction ka{a.handler, a.flags, a.restorer, a.mask};
    if (::syscall(SYS_rt_sigaction, sig, &ka, nullptr, 8) != 0)
      return errno_error("cannot set the disposition of signal {}", sig);
  }
  KernelStack ks{s.altstack_sp, static_cast<std::int32_t>(s.altstack_flags), 0, s.altstack_size};
  if (s.altstack_flags & SS_DISABLE) ks = KernelStack{0, SS_DISABLE, 0, 0};
  if (::syscall(SYS_sigaltstack, &ks, nullptr) != 0)
    return errno_error("cannot set sigaltstack sp={:#x} size={}", s.altstack_sp, s.altstack_size);
  return ok_status();
}

Status sig_restore_pending(RestoreContext& c) {
  OSMO_TRY(fault("restore.signals"));
  std::int32_t pid = c.img->task.pid;  // the syscall runs inside the new pid namespace
  for (auto& p : c.img->sig.pending) {
    siginfo_t si;
    std::memcpy(&si, p.bytes.data(), sizeof si);
    OSMO_TRY(c.tracee->write_mem(c.data, p.bytes.data(), p.bytes.size()));
    if (p.shared)
      OSMO_TRY(c.tracee->syscall_ok("rt_sigqueueinfo", SYS_rt_sigqueueinfo, pid,
                                    static_cast<std::uint64_t>(si.si_signo), c.data));
    else
      OSMO_TRY(c.tracee->syscall_ok("rt_tgsigqueueinfo", SYS_rt_tgsigqueueinfo, pid, pid,
                                    static_cast<std::uint64_t>(si.si_signo), c.data));
  }
  return ok_status();
}

}  // namespace osmo::ckpt
