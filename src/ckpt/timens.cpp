// SPDX-License-Identifier: GPL-2.0-or-later
// Clocks and the time namespace. CLOCK_MONOTONIC and CLOCK_BOOTTIME are recorded at dump as the
// process saw them (in its own time namespace, whose offsets /proc/PID/timens_offsets gives),
// and the restored process lives in a new time namespace (created by init, restorer/init.cpp)
// whose offsets make both clocks continue from those values: the process sees no jump, and time
// spent frozen does not count. CLOCK_REALTIME is never offset.
#include <fcntl.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <sstream>

#include "ckpt/kinds.hpp"

namespace osmo::ckpt {
namespace {

std::int64_t clock_ns(clockid_t c) {
  timespec ts{};
  ::clock_gettime(c, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Offsets of a time namespace ("self" or a pid); none (0) when the file is missing.
void read_offsets(const std::string& who, std::int64_t* mono, std::int64_t* boot) {
  *mono = *boot = 0;
  auto text = read_text_file(fmt::format("/proc/{}/timens_offsets", who));
  if (!text.ok()) return;
  std::istringstream in(*text);
  std::string name;
  long long s, ns;
  while (in >> name >> s >> ns) {
    std::int64_t v = s * 1'000'000'000LL + ns;
    // Older kernels print the clock ids (1, 7) instead of the names.
    if (name == "monotonic" || name == "1") *mono = v;
    if (name == "boottime" || name == "7") *boot = v;
  }
}

std::string offsets_text(std::int64_t mono, std::int64_t boot) {
  auto split = [](std::int64_t v) {
    std::int64_t s = v / 1'000'000'000, ns = v % 1'000'000'000;
    if (ns < 0) {
      ns += 1'000'000'000;
      s -= 1;
    }
    return fmt::format("{} {}", s, ns);
  };
  return fmt::format("monotonic {}\nboottime {}\n", split(mono), split(boot));
}

}  // namespace

void timens_read_clocks(pid_t pid, std::int64_t* monotonic_ns, std::int64_t* boottime_ns) {
  std::int64_t mono_off, boot_off;
  read_offsets(std::to_string(pid), &mono_off, &boot_off);
  *monotonic_ns = clock_ns(CLOCK_MONOTONIC) + mono_off;
  *boottime_ns = clock_ns(CLOCK_BOOTTIME) + boot_off;
}

std::string timens_offsets_for(const ProcessImage& img) {
  // The new namespace's offsets are relative to the root time namespace, and we may live in
  // one of our own: our clocks there are ours minus our offsets.
  std::int64_t own_mono, own_boot;
  read_offsets("self", &own_mono, &own_boot);
  return offsets_text(img.task.monotonic_ns - (clock_ns(CLOCK_MONOTONIC) - own_mono),
                      img.task.boottime_ns - (clock_ns(CLOCK_BOOTTIME) - own_boot));
}

Status timens_enter(const std::string& offsets) {
  // The offsets can be written only before any process lives in the new namespace: init's
  // children (the chain, restorer/chain.cpp) enter it, init itself stays in its old one.
  if (::unshare(CLONE_NEWTIME) != 0) return errno_error("cannot create a time namespace");
  UniqueFd f(::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC));
  if (!f || ::write(f.get(), offsets.data(), offsets.size()) != static_cast<ssize_t>(offsets.size()))
    return errno_error("cannot set time namespace offsets '{}'", offsets);
  return ok_status();
}

}  // namespace osmo::ckpt
