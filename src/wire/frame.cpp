// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/frame.hpp"

#include "wire/bytes.hpp"

namespace osmo::wire {

const char* to_string(FrameStatus s) {
  switch (s) {
    case FrameStatus::kOk:
      return "ok";
    case FrameStatus::kMalformed:
      return "malformed frame";
    case FrameStatus::kBadMagic:
      return "bad magic";
    case FrameStatus::kBadVersion:
      return "unsupported version";
    case FrameStatus::kBadMac:
      return "bad MAC";
  }
  return "?";
}

std::vector<std::uint8_t> seal_frame(const Key& key, const FrameHeader& header,
                                     std::span<const std::uint8_t> body) {
  Writer w;
  w.u32(header.magic);
  w.u8(header.version);
  w.u8(header.type);
  w.u16(header.flags);
  w.u32(static_cast<std::uint32_t>(body.size()));
  w.raw(body);
  MacTag tag = mac(key, w.data());
  w.raw(tag);
  return w.take();
}

bool decode_header(std::span<const std::uint8_t> bytes, FrameHeader* out) {
  if (bytes.size() < kFrameHeaderBytes) return false;
  Reader r(bytes.first(kFrameHeaderBytes));
  out->magic = r.u32();
  out->version = r.u8();
  out->type = r.u8();
  out->flags = r.u16();
  out->body_len = r.u32();
  return r.ok();
}

FrameStatus open_frame(const Key& key, const FrameSpec& spec, std::span<const std::uint8_t> frame,
                       OpenedFrame* out) {
  FrameHeader h;
  if (frame.size() < kFrameOverheadBytes || !decode_header(frame, &h))
    return FrameStatus::kMalformed;
  if (h.magic != spec.magic) return FrameStatus::kBadMagic;
  if (h.version < spec.min_version || h.version > spec.max_version) return FrameStatus::kBadVersion;
  if (h.body_len != frame.size() - kFrameOverheadBytes || h.body_len > spec.max_body_bytes)
    return FrameStatus::kMalformed;
  auto signed_part = frame.first(kFrameHeaderBytes + h.body_len);
  auto tag = frame.subspan(kFrameHeaderBytes + h.body_len, kMacBytes);
  if (!verify_mac(key, signed_part, tag)) return FrameStatus::kBadMac;
  out->header = h;
  out->body = frame.subspan(kFrameHeaderBytes, h.body_len);
  return FrameStatus::kOk;
}

}  // namespace osmo::wire
