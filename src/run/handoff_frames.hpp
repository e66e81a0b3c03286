// SPDX-License-Identifier: GPL-2.0-or-later
// Payloads of the relay frames that hand a job's stream from one shepherd to another (handoff,
// handoff-ack, attach, attached; frame.hpp has their numbers, docs/protocol.md the exchange).
// Both ends encode and decode them here, so that they agree on every field; decoding is strict: a
// missing field or one of the wrong type is an error, never a default.
//
// All counts run from the job's start, across every stream it has had: "stdout"/"stderr" are the
// payload bytes of stdout/stderr frames the shepherds sent (= the anchor received), "stdin" the
// payload bytes of stdin frames the anchor sent (= the shepherds received), "signals" the number
// of signal frames the anchor sent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace osmo::run {

struct StreamOffsets {
  std::uint64_t stdout_bytes = 0;
  std::uint64_t stderr_bytes = 0;
  std::uint64_t stdin_bytes = 0;
  std::uint64_t signals = 0;
  bool operator==(const StreamOffsets&) const = default;
};

// shepherd -> anchor, `handoff`: where this stream ends.
struct HandoffMsg {
  StreamOffsets at;
};

// anchor -> shepherd, `handoff-ack`: what the anchor sent on the stream; the epoch a new shepherd
// must present in its `attach`.
struct HandoffAckMsg {
  std::uint64_t stdin_bytes = 0;
  std::uint64_t signals = 0;
  std::uint32_t epoch = 0;
};

// new shepherd -> anchor, `attach`: the first frame on a new stream.
struct AttachMsg {
  std::string id;
  std::uint32_t epoch = 0;
  std::string node;  // where the job now runs (for the anchor's messages)
  StreamOffsets at;
};

// anchor -> new shepherd, `attached`.
struct AttachedMsg {
  std::uint64_t stdin_bytes = 0;
  std::uint64_t signals = 0;
};

std::string encode(const HandoffMsg& m);
std::string encode(const HandoffAckMsg& m);
std::string encode(const AttachMsg& m);
std::string encode(const AttachedMsg& m);
Result<HandoffMsg> decode_handoff(std::string_view payload);
Result<HandoffAckMsg> decode_handoff_ack(std::string_view payload);
Result<AttachMsg> decode_attach(std::string_view payload);
Result<AttachedMsg> decode_attached(std::string_view payload);

// `rejected` and `refused` carry {"message"}; a payload that is not such JSON is shown as is.
std::string encode_message(std::string_view message);
std::string decode_message(std::string_view payload);

// "stdout 10, stderr 0, stdin 5, signals 1", for error messages.
std::string describe(const StreamOffsets& o);

}  // namespace osmo::run
