// SPDX-License-Identifier: GPL-2.0-or-later
// The relay stream between `osmo run` (the home anchor) and a job's shepherd on the node that
// runs it. After the daemons' authenticated handshake the stream carries only these frames, in
// both directions: an 8-byte header (type, flags, reserved, little-endian payload length) and the
// payload. Frame numbers are the protocol: append new types, never renumber.
//
// Flow control: stdout/stderr (shepherd -> anchor) rely on TCP back-pressure, because the anchor
// has nothing urgent to receive once the job's output is flowing (the exit status comes last
// anyway). stdin (anchor -> shepherd) is credit-based, so that the shepherd can always read the
// stream and a signal frame is never stuck behind stdin data the job does not read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace osmo::run {

enum class FrameType : std::uint8_t {
  // anchor -> shepherd
  kStdin = 1,          // payload: bytes for the job's stdin (never more than the granted credit)
  kStdinEof = 2,       // the anchor's stdin reached EOF: close the job's stdin
  kSignal = 3,         // payload: u32 signal, u32 flags (kSignalToGroup)
  kStdoutClosed = 4,   // the anchor's stdout reader is gone: close the job's stdout (SIGPIPE)
  kStderrClosed = 5,   // same for stderr
  // Reattaching a moved job (docs/protocol.md, "Relay stream: handoff and reattach").
  kHandoffAck = 6,     // JSON {"stdin", "signals", "epoch"}: what this stream carried; nothing follows
                       // until the anchor decides (resumed / rejected); "epoch" is the one a new
                       // shepherd must attach with
  kResumed = 7,        // the anchor accepted `resume`: the old stream continues as before
  kAttached = 8,       // JSON {"stdin", "signals"}: the anchor accepted `attach`; the stream is live
  kRejected = 9,       // JSON {"message"}: the anchor chose the other copy (or refuses this stream):
                       // the copy of the job behind this stream must die; last frame
  // A job with a terminal (issue 12, job_pty.hpp).
  kWindowSize = 10,    // payload: u16 rows, u16 cols, u16 xpixel, u16 ypixel (little-endian): the
                       // caller's window changed; the job's pty takes it (SIGWINCH in the job)
  // shepherd -> anchor
  kStarted = 16,       // payload: JSON {"id", "node", "pid"}; the job runs
  kStdout = 17,        // payload: bytes the job wrote to stdout
  kStderr = 18,        // payload: bytes the job wrote to stderr
  kStdoutEof = 19,
  kStderrEof = 20,
  kExit = 21,          // payload: u32 kind (0 exited, 1 killed by signal), u32 code/signal; last
  kNotice = 22,        // payload: one line for the caller's stderr (e.g. "foo: command not found")
  kRefused = 23,       // payload: JSON {"message"}; the job was not started; last frame
  kCredit = 24,        // payload: u32 more stdin bytes the anchor may send
  kHeartbeat = 25,     // empty; sent when the stream has been quiet (liveness of the node)
  kMigrating = 26,     // the job is frozen for a move: the anchor holds stdin and signals from now
                       // on, and tolerates silence up to its handoff bound
  kHandoff = 27,       // JSON {"stdout", "stderr", "stdin", "signals"}: every output byte is sent;
                       // only heartbeats and `resume` may follow
  kResume = 28,        // the move failed: the old copy wants to continue on this stream
  kAttach = 29,        // JSON {"id", "epoch", "node", "stdout", "stderr", "stdin", "signals"}: first
                       // frame of a new shepherd's stream to the home anchor
  kTty = 30,           // payload: bytes read from the job's pty master (what the job wrote to its
                       // terminal, and the line discipline's echo): for the caller's terminal
};

// Not a frame: an OutputPipe with no end-of-file frame (the pty's output).
inline constexpr FrameType kNoFrame = FrameType{0};

inline constexpr std::uint32_t kSignalToGroup = 1;  // deliver to the job's process group
inline constexpr std::uint32_t kExitCode = 0;
inline constexpr std::uint32_t kExitSignal = 1;

inline constexpr std::size_t kFrameHeaderBytes = 8;
// Largest payload; also the read size for job output, large so that each frame amortises its
// header and the syscalls around it (throughput target: >= 1 GB/s).
inline constexpr std::uint32_t kMaxFramePayload = 1u << 20;
// stdin bytes the shepherd accepts ahead of the job reading them.
inline constexpr std::uint32_t kStdinWindowBytes = 4u << 20;

struct FrameHeader {
  FrameType type{};
  std::uint32_t length = 0;
};

inline void encode_header(char* out, FrameType type, std::uint32_t length) {
  out[0] = static_cast<char>(type);
  out[1] = out[2] = out[3] = 0;
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<char>((length >> (8 * i)) & 0xff);
}

// Validates the header: known type, bounded length.
Result<FrameHeader> decode_header(const char* in);

// Appends a whole frame to `out`.
void append_frame(std::vector<char>& out, FrameType type, std::string_view payload = {});
void append_u32_pair_frame(std::vector<char>& out, FrameType type, std::uint32_t a,
                           std::uint32_t b);
void append_u32_frame(std::vector<char>& out, FrameType type, std::uint32_t a);

std::uint32_t read_u32(const char* p);
void write_u32(char* p, std::uint32_t v);

// A payload of one or two little-endian u32 (credit, signal, exit), without allocating.
struct U32Payload {
  char bytes[8];
  std::size_t size;
  std::string_view view() const { return {bytes, size}; }
};
U32Payload u32_payload(std::uint32_t a);
U32Payload u32_pair_payload(std::uint32_t a, std::uint32_t b);

// The window size frame's payload: rows, cols, xpixel, ypixel.
struct WindowSize {
  std::uint16_t rows = 0, cols = 0, xpixel = 0, ypixel = 0;
};
U32Payload window_size_payload(const WindowSize& ws);
// Fails unless the payload is exactly 8 bytes.
Result<WindowSize> decode_window_size(std::string_view payload);

const char* frame_name(FrameType t);

}  // namespace osmo::run
