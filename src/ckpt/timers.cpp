// SPDX-License-Identifier: GPL-2.0-or-later
// Interval timers (ITIMER_REAL/VIRTUAL/PROF): read by injected getitimer, set again by injected
// setitimer at the very end of the restore (restore.cpp; only SIGTRAP's disposition and the
// trampoline's munmap follow, through syscall stops with every signal blocked), so no timer runs
// while the process is rebuilt: its remaining time starts counting only when the process is
// about to run, and a timer signal cannot meet the other injected calls.
// The remaining time continues from where it was at dump (time spent frozen is not counted).
//
// A periodic ITIMER_REAL that expired is inactive until its SIGALRM is dequeued: the kernel
// re-arms it in dequeue_signal(), from the process-wide queue only. While we hold the process
// every signal is blocked, so an expiry during the dump leaves value 0 and SIGALRM pending:
//   dump:  signals read (no SIGALRM) ... timer expires ... getitimer -> value 0
// The image must then carry the SIGALRM too (read again here), and the restore arms the timer
// for one interval: setitimer() with value 0 would disarm it for good (the "lost itimer" bug).
#include <sys/syscall.h>
#include <sys/time.h>

#include <csignal>
#include <cstring>

#include "ckpt/kinds.hpp"

namespace osmo::ckpt {

Status timers_dump(DumpContext& c) {
  for (int which = 0; which < 3; which++) {
    OSMO_TRY(c.tracee->syscall_ok("getitimer", SYS_getitimer, static_cast<std::uint64_t>(which), c.scratch_data()));
    itimerval v{};
    OSMO_TRY(c.tracee->read_mem(c.scratch_data(), &v, sizeof v));
    c.img->timers.itimers[static_cast<std::size_t>(which)] = {
        v.it_interval.tv_sec * 1'000'000 + v.it_interval.tv_usec, v.it_value.tv_sec * 1'000'000 + v.it_value.tv_usec};
  }
  const auto& real = c.img->timers.itimers[ITIMER_REAL];
  if (real[0] != 0 && real[1] == 0) {
    auto& pending = c.img->sig.pending;
    bool have = false;
    for (const SiginfoImage& p : pending) {
      siginfo_t si;
      std::memcpy(&si, p.bytes.data(), sizeof si);
      have = have || si.si_signo == SIGALRM;
    }
    if (!have) {
      std::vector<SiginfoImage> shared;
      OSMO_TRY(sig_peek_pending(c.pid, true, &shared));
      for (const SiginfoImage& p : shared) {
        siginfo_t si;
        std::memcpy(&si, p.bytes.data(), sizeof si);
        if (si.si_signo == SIGALRM) pending.push_back(p);
      }
    }
  }
  return ok_status();
}

void timers_encode(const ProcessImage& img, Encoder& e) {
  for (auto& t : img.timers.itimers) {
    e.i64(t[0]);
    e.i64(t[1]);
  }
}

Status timers_decode(Decoder& d, ProcessImage& img) {
  for (auto& t : img.timers.itimers) {
    OSMO_ASSIGN_OR_RETURN(t[0], d.i64());
    OSMO_ASSIGN_OR_RETURN(t[1], d.i64());
  }
  return d.finish();
}

void timers_describe(const ProcessImage& img, nlohmann::json& j) {
  static const char* kNames[] = {"real", "virtual", "prof"};
  auto& o = j["itimers"];
  for (int i = 0; i < 3; i++)
    o[kNames[i]] = {{"interval_us", img.timers.itimers[static_cast<std::size_t>(i)][0]},
                    {"value_us", img.timers.itimers[static_cast<std::size_t>(i)][1]}};
}

Status timers_restore(RestoreContext& c) {
  for (int which = 0; which < 3; which++) {
    auto& t = c.img->timers.itimers[static_cast<std::size_t>(which)];
    if (t[0] == 0 && t[1] == 0) continue;
    // Inactive periodic timer (its SIGALRM pending, see the top): one more interval.
    std::int64_t value = t[1] == 0 ? t[0] : t[1];
    itimerval v{};
    v.it_interval.tv_sec = t[0] / 1'000'000;
    v.it_interval.tv_usec = t[0] % 1'000'000;
    v.it_value.tv_sec = value / 1'000'000;
    v.it_value.tv_usec = value % 1'000'000;
    OSMO_TRY(c.tracee->write_mem(c.data, &v, sizeof v));
    OSMO_TRY(c.tracee->syscall_ok("setitimer", SYS_setitimer, static_cast<std::uint64_t>(which), c.data, 0));
  }
  return ok_status();
}

}  // namespace osmo::ckpt
