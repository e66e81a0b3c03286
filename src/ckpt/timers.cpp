// Interval timers (ITIMER_REAL/VIRTUAL/PROF): read by injected getitimer, set again by injected
// setitimer as one of the last restore steps so they do not fire while the process is rebuilt.
// The remaining time continues from where it was at dump (time spent frozen is not counted).
#include <sys/syscall.h>
#include <sys/time.h>

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
    // A periodic ITIMER_REAL whose SIGALRM is pending is inactive (value 0): the kernel re-arms
    // it when the signal is dequeued. setitimer() with value 0 would disarm it for good, so
    // arm it for one more interval instead.
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
