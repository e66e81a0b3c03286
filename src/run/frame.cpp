// SPDX-License-Identifier: GPL-2.0-or-later
// Encoding and validation of relay frames (see frame.hpp).
#include "run/frame.hpp"

namespace osmo::run {

const char* frame_name(FrameType t) {
  switch (t) {
    case FrameType::kStdin: return "stdin";
    case FrameType::kStdinEof: return "stdin-eof";
    case FrameType::kSignal: return "signal";
    case FrameType::kStdoutClosed: return "stdout-closed";
    case FrameType::kStderrClosed: return "stderr-closed";
    case FrameType::kHandoffAck: return "handoff-ack";
    case FrameType::kResumed: return "resumed";
    case FrameType::kAttached: return "attached";
    case FrameType::kRejected: return "rejected";
    case FrameType::kWindowSize: return "window-size";
    case FrameType::kTty: return "tty";
    case FrameType::kStarted: return "started";
    case FrameType::kStdout: return "stdout";
    case FrameType::kStderr: return "stderr";
    case FrameType::kStdoutEof: return "stdout-eof";
    case FrameType::kStderrEof: return "stderr-eof";
    case FrameType::kExit: return "exit";
    case FrameType::kNotice: return "notice";
    case FrameType::kRefused: return "refused";
    case FrameType::kCredit: return "credit";
    case FrameType::kHeartbeat: return "heartbeat";
    case FrameType::kMigrating: return "migrating";
    case FrameType::kHandoff: return "handoff";
    case FrameType::kResume: return "resume";
    case FrameType::kAttach: return "attach";
  }
  return "?";
}

std::uint32_t read_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

Result<FrameHeader> decode_header(const char* in) {
  const auto raw = static_cast<std::uint8_t>(in[0]);
  const auto type = static_cast<FrameType>(raw);
  if (std::string_view(frame_name(type)) == "?")
    return make_error("relay stream: unknown frame type {}", raw);
  if (in[1] != 0 || in[2] != 0 || in[3] != 0)
    return make_error("relay stream: nonzero reserved bytes in {} frame", frame_name(type));
  FrameHeader h{type, read_u32(in + 4)};
  if (h.length > kMaxFramePayload)
    return make_error("relay stream: {} frame of {} bytes exceeds the {} byte limit",
                      frame_name(type), h.length, kMaxFramePayload);
  return h;
}

void append_frame(std::vector<char>& out, FrameType type, std::string_view payload) {
  const std::size_t at = out.size();
  out.resize(at + kFrameHeaderBytes + payload.size());
  encode_header(out.data() + at, type, static_cast<std::uint32_t>(payload.size()));
  if (!payload.empty()) std::memcpy(out.data() + at + kFrameHeaderBytes, payload.data(), payload.size());
}

void write_u32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

U32Payload u32_payload(std::uint32_t a) {
  U32Payload p{};
  write_u32(p.bytes, a);
  p.size = 4;
  return p;
}

U32Payload u32_pair_payload(std::uint32_t a, std::uint32_t b) {
  U32Payload p{};
  write_u32(p.bytes, a);
  write_u32(p.bytes + 4, b);
  p.size = 8;
  return p;
}

U32Payload window_size_payload(const WindowSize& ws) {
  U32Payload p{};
  const std::uint16_t v[4] = {ws.rows, ws.cols, ws.xpixel, ws.ypixel};
  for (int i = 0; i < 4; ++i) {
    p.bytes[2 * i] = static_cast<char>(v[i] & 0xff);
    p.bytes[2 * i + 1] = static_cast<char>(v[i] >> 8);
  }
  p.size = 8;
  return p;
}

Result<WindowSize> decode_window_size(std::string_view payload) {
  if (payload.size() != 8) return make_error("relay stream: window-size frame of {} bytes (8 expected)", payload.size());
  std::uint16_t v[4];
  for (int i = 0; i < 4; ++i)
    v[i] = static_cast<std::uint16_t>(static_cast<unsigned char>(payload[2 * i]) |
                                      (static_cast<unsigned char>(payload[2 * i + 1]) << 8));
  return WindowSize{v[0], v[1], v[2], v[3]};
}

void append_u32_pair_frame(std::vector<char>& out, FrameType type, std::uint32_t a,
                           std::uint32_t b) {
  append_frame(out, type, u32_pair_payload(a, b).view());
}

void append_u32_frame(std::vector<char>& out, FrameType type, std::uint32_t a) {
  append_frame(out, type, u32_payload(a).view());
}

}  // namespace osmo::run
