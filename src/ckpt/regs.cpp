// SPDX-License-Identifier: GPL-2.0-or-later
// Registers: general registers (with fs/gs base), the full xsave area (x87, SSE, AVX, AVX-512,
// PKRU...) exactly as PTRACE_GETREGSET(NT_X86_XSTATE) returns it, and XCR0 of the dumping CPU.
// A restore on a CPU whose enabled xsave features differ is refused: the layout would not match.
#include <cstring>

#include "ckpt/faults.hpp"
#include "ckpt/kinds.hpp"

namespace osmo::ckpt {

__attribute__((target("xsave"))) std::uint64_t read_xcr0() { return __builtin_ia32_xgetbv(0); }

Status regs_dump(DumpContext& c) {
  // Captured at the interrupt stop: injected syscalls have changed the live registers since.
  c.img->regs.gp = c.original_regs;
  c.img->regs.xstate = c.original_xstate;
  c.img->regs.xcr0 = read_xcr0();
  return fault("dump.regs");
}

void regs_encode(const ProcessImage& img, Encoder& e) {
  e.u32(sizeof(user_regs_struct));
  e.raw(&img.regs.gp, sizeof(user_regs_struct));
  e.bytes(img.regs.xstate);
  e.u64(img.regs.xcr0);
}

Status regs_decode(Decoder& d, ProcessImage& img) {
  OSMO_ASSIGN_OR_RETURN(std::uint32_t n, d.u32());
  if (n != sizeof(user_regs_struct))
    return make_error("image corrupted: register block of {} bytes (expected {})", n,
                      sizeof(user_regs_struct));
  OSMO_TRY(d.raw(&img.regs.gp, sizeof(user_regs_struct)));
  OSMO_ASSIGN_OR_RETURN(img.regs.xstate, d.bytes());
  OSMO_ASSIGN_OR_RETURN(img.regs.xcr0, d.u64());
  return d.finish();
}

void regs_describe(const ProcessImage& img, nlohmann::json& j) {
  const auto& r = img.regs.gp;
  auto& o = j["regs"];
  o["rip"] = hex(r.rip);
  o["rsp"] = hex(r.rsp);
  o["rax"] = hex(r.rax);
  o["orig_rax"] = static_cast<long long>(r.orig_rax);
  o["fs_base"] = hex(r.fs_base);
  o["gs_base"] = hex(r.gs_base);
  o["eflags"] = hex(r.eflags);
  o["xstate_bytes"] = img.regs.xstate.size();
  o["xcr0"] = hex(img.regs.xcr0);
}

Status regs_check_cpu(const ProcessImage& img) {
  std::uint64_t here = read_xcr0();
  if (here != img.regs.xcr0)
    return make_error(
        "this CPU's xsave features (XCR0 {:#x}) differ from those of the checkpointing CPU ({:#x})",
        here, img.regs.xcr0);
  return ok_status();
}

Status regs_check_xstate(RestoreContext& c) {
  // Same XCR0 (regs_check_cpu) normally means the same xsave layout; a kernel that sizes the
  // area differently would make PTRACE_SETREGSET refuse the image's only at the very end.
  OSMO_ASSIGN_OR_RETURN(auto xs, c.tracee->get_xstate());
  if (xs.size() != c.img->regs.xstate.size())
    return make_error("this CPU's xstate is {} bytes, the image's {} (different xsave features)", xs.size(),
                      c.img->regs.xstate.size());
  return ok_status();
}

}  // namespace osmo::ckpt
