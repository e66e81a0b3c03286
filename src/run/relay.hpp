// SPDX-License-Identifier: GPL-2.0-or-later
// The shepherd's end of a job's relay stream (frame.hpp): one loop that moves the job's stdout and
// stderr to the home anchor (zero-copy with splice(2) for bulk output), the anchor's stdin into
// the job within the credit it granted, the anchor's signals to the job, heartbeats while the
// stream is quiet, and the job's exit status last. The shepherd (shepherd.hpp) starts the job and
// hands its pipes and a JobHost to a Relay; the Relay knows nothing of how the job was started.
//
// The loop passes through explicit phases (Relay::Phase): running while the job runs, draining
// once it has ended and its output pipes are read to EOF, final once the last frame is queued,
// done once it is sent; or anchor-gone when the stream breaks. Every frame the shepherd sends
// goes through one function, Relay::queue_frame.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "run/byte_buffer.hpp"
#include "run/frame.hpp"

namespace osmo::run {

// How the relay reaches the job's processes: signals go through it, and it says when the job has
// ended. The shepherd's own job talks to osmo init over two pipes (shepherd.cpp).
class JobHost {
 public:
  virtual ~JobHost() = default;
  // Readable when the job's fate may have changed (-1: nothing to watch any more).
  virtual int event_fd() const = 0;
  // Called when event_fd() is readable: the job's wait status once it has ended.
  virtual std::optional<int> on_event() = 0;
  // Best effort: a job that is gone ignores it. `group`: the job's whole process group.
  virtual void signal(int signo, bool group) = 0;
};

// The job's ends of its stdio pipes, owned by the relay.
struct JobPipes {
  UniqueFd in;   // write end of the job's stdin
  UniqueFd out;  // read end of its stdout
  UniqueFd err;  // read end of its stderr
};

class Relay {
 public:
  enum class Phase {
    kRunning,     // the job runs (its end is not known yet): relay both ways
    kDraining,    // the job has ended: read its output pipes to EOF, then queue the exit frame
    kFinal,       // the last frame (exit or refused) is queued: only sending remains
    kDone,        // the last frame has been sent
    kAnchorGone,  // the stream broke or carried garbage: the job must not outlive it
  };

  // `host` must outlive the relay. The stream is made non-blocking here.
  Relay(UniqueFd stream, JobPipes pipes, JobHost* host, std::string job_id, Logger log);

  // Where a frame's payload comes from: bytes to copy, or a job output pipe (read in place into
  // the outgoing queue, or spliced from the pipe into the stream when the pipe holds much).
  struct OutputPipe;
  struct Payload {
    std::string_view bytes;
    OutputPipe* pipe = nullptr;
  };
  // The one way out: every frame the shepherd sends is queued here, in order. Nothing is queued
  // after the last frame (exit, refused); queueing one of those moves the phase to kFinal.
  void queue_frame(FrameType type, Payload payload);
  void queue_frame(FrameType type, std::string_view bytes = {}) { queue_frame(type, Payload{bytes, nullptr}); }

  // The job ended before the relay started (its exec failed): its output is still read to EOF.
  void job_ended(int wait_status);

  // Runs until the last frame has been sent (kDone) or the anchor is gone (kAnchorGone).
  Phase run();
  // After kDone: half-closes the stream and waits (bounded) for the anchor to close its end, so
  // that our close cannot reset a connection with output still in flight.
  void linger();

  Phase phase() const { return phase_; }

  // One of the job's output pipes and what the relay does with it.
  struct OutputPipe {
    UniqueFd fd;
    FrameType data;
    FrameType eof;
    // The anchor asked us to close it while a spliced frame from it was still unfinished.
    bool close_after_splice = false;
  };

 private:
  // The job's stdin, as the anchor's frames drive it.
  enum class StdinState {
    kOpen,        // bytes from the anchor are buffered and written as the job reads
    kEofPending,  // the anchor's stdin ended: the job's stdin closes once the buffer is written
    kClosed,      // the job's stdin is closed: what still comes is discarded (and its credit returned)
  };

  void loop_once();
  bool handle_stream_input();  // false: the anchor is gone
  bool flush_stream();         // false: the anchor is gone
  bool continue_splice();      // false: the anchor is gone
  bool try_start_splice(OutputPipe& p);
  void read_output_in_place(OutputPipe& p);
  void write_job_stdin();
  void close_job_stdin();
  void close_output(OutputPipe& p);
  void send_credit(std::uint32_t n, bool force);
  void check_job_end();
  bool last_frame_queued() const { return phase_ == Phase::kFinal || phase_ == Phase::kDone; }

  UniqueFd sock_;
  JobHost* host_;
  std::string id_;
  Logger log_;
  Phase phase_ = Phase::kRunning;
  std::optional<int> wait_status_;  // the job's, once it has ended

  UniqueFd job_in_;
  OutputPipe out_pipe_;
  OutputPipe err_pipe_;
  StdinState stdin_state_ = StdinState::kOpen;

  ByteBuffer out_{4 << 20};              // frames to the anchor
  ByteBuffer in_{2 << 20};               // bytes from the anchor, not yet parsed
  ByteBuffer stdin_{kStdinWindowBytes};  // stdin for the job, not yet written to its pipe
  std::uint32_t credit_owed_ = 0;
  std::int64_t last_send_ms_ = 0;

  // A frame whose payload moves from a job pipe into the stream with splice(2). It is started
  // only when out_ is empty, and out_ is not flushed until it is complete, so frames queued
  // meanwhile follow it in order.
  // On TCP, job output is read only while the kernel holds less than kNotSentLowatBytes of
  // unsent data (TCP_NOTSENT_LOWAT makes POLLOUT mean exactly that): while the network is busy
  // the job's pipe fills, and the next frame is large instead of one per small write().
  bool tcp_ = false;
  OutputPipe* splice_from_ = nullptr;
  std::size_t splice_left_ = 0;
  char splice_header_[kFrameHeaderBytes];
  std::size_t splice_header_left_ = 0;
};

}  // namespace osmo::run
