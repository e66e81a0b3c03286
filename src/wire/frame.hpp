// SPDX-License-Identifier: GPL-2.0-or-later
// Authenticated frames: the envelope of every osmo message, whether a gossip datagram or a frame
// on a daemon peer stream.
//
//   offset  size  field
//   0       4     magic      (u32 LE; names the protocol: gossip datagrams, peer streams, ...)
//   4       1     version    (protocol version; bumped only for incompatible changes)
//   5       1     type       (message type; numbers are the protocol, see each protocol's enum)
//   6       2     flags      (u16 LE; reserved, written 0, ignored by readers)
//   8       4     body_len   (u32 LE; bytes of body that follow)
//   12      n     body       (tagged fields, see fields.hpp)
//   12+n    32    mac        (keyed BLAKE2b-256 over bytes [0, 12+n))
//
// Integers are serialized field by field in little-endian order (never by memcpy of the struct);
// the struct and its static_asserts pin the documented layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "wire/mac.hpp"

namespace osmo::wire {

struct FrameHeader {
  std::uint32_t magic = 0;
  std::uint8_t version = 0;
  std::uint8_t type = 0;
  std::uint16_t flags = 0;
  std::uint32_t body_len = 0;
};
static_assert(offsetof(FrameHeader, magic) == 0);
static_assert(offsetof(FrameHeader, version) == 4);
static_assert(offsetof(FrameHeader, type) == 5);
static_assert(offsetof(FrameHeader, flags) == 6);
static_assert(offsetof(FrameHeader, body_len) == 8);
static_assert(sizeof(FrameHeader) == 12);

inline constexpr std::size_t kFrameHeaderBytes = sizeof(FrameHeader);
inline constexpr std::size_t kFrameOverheadBytes = kFrameHeaderBytes + kMacBytes;

// What an accepting reader expects: the protocol's magic and the range of versions it speaks.
struct FrameSpec {
  std::uint32_t magic = 0;
  std::uint8_t min_version = 1;
  std::uint8_t max_version = 1;
  std::size_t max_body_bytes = 0;
};

enum class FrameStatus : std::uint8_t {
  kOk = 0,
  kMalformed,   // shorter than a header + MAC, or body_len disagrees with the size, or too large
  kBadMagic,    // not this protocol at all
  kBadVersion,  // this protocol, a version we do not speak
  kBadMac,      // not signed with our cluster key (or altered in transit)
};
const char* to_string(FrameStatus s);

// Header + body + MAC, ready to send. The caller keeps the body within its protocol's limit.
std::vector<std::uint8_t> seal_frame(const Key& key, const FrameHeader& header,
                                     std::span<const std::uint8_t> body);

// Parses the 12 header bytes at the start of `bytes` (e.g. to learn body_len on a stream).
// False if fewer than 12 bytes are given.
bool decode_header(std::span<const std::uint8_t> bytes, FrameHeader* out);

struct OpenedFrame {
  FrameHeader header;
  std::span<const std::uint8_t> body;  // points into the frame passed to open_frame
};

// Checks, in this order, size, magic, version, length and MAC of one complete frame. The version
// is checked before the MAC because a future version may authenticate differently; a frame that
// fails any check is never interpreted further.
FrameStatus open_frame(const Key& key, const FrameSpec& spec, std::span<const std::uint8_t> frame,
                       OpenedFrame* out);

}  // namespace osmo::wire
