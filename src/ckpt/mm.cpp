// SPDX-License-Identifier: GPL-2.0-or-later
// mm fields: code/data/heap/stack bounds, argv/envp bounds, auxv, exe. The kernel shows them in
// /proc/PID/stat and /proc/PID/auxv, except the current brk, which we read by injecting brk(0).
// At restore they are set with ONE PR_SET_MM_MAP: single-field PR_SET_MM is refused (EPERM) for a
// process in our situation, and the map call validates all fields together.
#include <linux/prctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cstring>

#include "ckpt/faults.hpp"
#include "ckpt/kinds.hpp"

namespace osmo::ckpt {

Status mm_dump(DumpContext& c) {
  MmImage& m = c.img->mm;
  OSMO_ASSIGN_OR_RETURN(auto f, read_stat_fields(c.pid));
  auto num = [&](int i) { return std::stoull(f[static_cast<std::size_t>(i)]); };
  m.start_code = num(26);
  m.end_code = num(27);
  m.start_stack = num(28);
  m.start_data = num(45);
  m.end_data = num(46);
  m.start_brk = num(47);
  m.arg_start = num(48);
  m.arg_end = num(49);
  m.env_start = num(50);
  m.env_end = num(51);
  OSMO_ASSIGN_OR_RETURN(long brk, c.tracee->syscall_ok("brk(0)", SYS_brk, 0));
  m.brk = static_cast<std::uint64_t>(brk);
  OSMO_ASSIGN_OR_RETURN(std::string auxv, read_text_file(fmt::format("/proc/{}/auxv", c.pid)));
  m.auxv.resize(auxv.size() / 8);
  std::memcpy(m.auxv.data(), auxv.data(), m.auxv.size() * 8);
  // Keep entries up to and including AT_NULL.
  for (std::size_t i = 0; i + 1 < m.auxv.size(); i += 2)
    if (m.auxv[i] == 0) {
      m.auxv.resize(i + 2);
      break;
    }
  return fault("dump.mm");
}

void mm_encode(const ProcessImage& img, Encoder& e) {
  const MmImage& m = img.mm;
  for (auto v : {m.start_code, m.end_code, m.start_data, m.end_data, m.start_brk, m.brk, m.start_stack,
                 m.arg_start, m.arg_end, m.env_start, m.env_end})
    e.u64(v);
  e.u32(static_cast<std::uint32_t>(m.auxv.size()));
  for (auto v : m.auxv) e.u64(v);
}

Status mm_decode(Decoder& d, ProcessImage& img) {
  MmImage& m = img.mm;
  for (auto* p : {&m.start_code, &m.end_code, &m.start_data, &m.end_data, &m.start_brk, &m.brk,
                  &m.start_stack, &m.arg_start, &m.arg_end, &m.env_start, &m.env_end}) {
    OSMO_ASSIGN_OR_RETURN(*p, d.u64());
  }
  OSMO_ASSIGN_OR_RETURN(std::uint32_t n, d.count(8));
  if (n > 256) return make_error("image corrupted: auxv of {} words", n);
  m.auxv.resize(n);
  for (auto& v : m.auxv) {
    OSMO_ASSIGN_OR_RETURN(v, d.u64());
  }
  return d.finish();
}

void mm_describe(const ProcessImage& img, nlohmann::json& j) {
  const MmImage& m = img.mm;
  auto& o = j["mm"];
  o["code"] = {hex(m.start_code), hex(m.end_code)};
  o["data"] = {hex(m.start_data), hex(m.end_data)};
  o["brk"] = {hex(m.start_brk), hex(m.brk)};
  o["start_stack"] = hex(m.start_stack);
  o["arg"] = {hex(m.arg_start), hex(m.arg_end)};
  o["env"] = {hex(m.env_start), hex(m.env_end)};
  o["auxv_words"] = m.auxv.size();
}

Status mm_restore(RestoreContext& c) {
  OSMO_TRY(fault("restore.mm_map"));
  const MmImage& m = c.img->mm;
  prctl_mm_map map{};
  map.start_code = m.start_code;
  map.end_code = m.end_code;
  map.start_data = m.start_data;
  map.end_data = m.end_data;
  map.start_brk = m.start_brk;
  map.brk = m.brk;
  map.start_stack = m.start_stack;
  map.arg_start = m.arg_start;
  map.arg_end = m.arg_end;
  map.env_start = m.env_start;
  map.env_end = m.env_end;
  std::uint64_t auxv_addr = c.data + 256;
  map.auxv = reinterpret_cast<__u64*>(auxv_addr);
  map.auxv_size = static_cast<__u32>(m.auxv.size() * 8);
  map.exe_fd = c.exe_fd >= 0 ? static_cast<__u32>(c.exe_fd) : static_cast<__u32>(-1);
  if (256 + m.auxv.size() * 8 > kTrampSize - kTrampDataOffset) return make_error("auxv too large");
  OSMO_TRY(c.tracee->write_mem(c.data, &map, sizeof map));
  if (!m.auxv.empty()) OSMO_TRY(c.tracee->write_mem(auxv_addr, m.auxv.data(), m.auxv.size() * 8));
  OSMO_TRY(c.tracee->syscall_ok("prctl(PR_SET_MM_MAP)", SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, c.data,
                                sizeof map, 0));
  return ok_status();
}

}  // namespace osmo::ckpt
