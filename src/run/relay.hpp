// SPDX-License-Identifier: GPL-2.0-or-later
// The shepherd's end of a job's relay stream (frame.hpp): one loop that moves the job's stdout and
// stderr to the home anchor (zero-copy with splice(2) for bulk output), the anchor's stdin into
// the job within the credit it granted, the anchor's signals to the job, heartbeats while the
// stream is quiet, and the job's exit status last. The shepherd (shepherd.hpp) starts the job, or
// adopts one restored on this node, and hands its pipes and a JobHost (job_host.hpp) to a Relay;
// the Relay knows nothing of how the job was started.
//
// The loop passes through explicit phases (Relay::Phase, below). Every frame the shepherd sends
// goes through one function, Relay::queue_frame, which also counts the stream's offsets (the
// output bytes sent; the stdin bytes and signal frames received) that a move hands over.
//
// Moving the job (docs/run.md, "Moving a job"; docs/protocol.md has the frames): the migration
// code, installed with set_migration_handler, is given each connection to the shepherd's control
// endpoint (<state_dir>/jobs/<id>.sock) and a MigrationControl with which it drives the handoff.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/log.hpp"
#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "run/byte_buffer.hpp"
#include "run/frame.hpp"
#include "run/job_spec.hpp"
#include "run/handoff_frames.hpp"
#include "run/job_host.hpp"

namespace osmo::run {

// The job's ends of its stdio pipes, owned by the relay.
struct JobPipes {
  UniqueFd in;   // write end of the job's stdin
  UniqueFd out;  // read end of its stdout
  UniqueFd err;  // read end of its stderr
  // The master of the job's pty (job_pty.hpp), if it has one: its output travels as `tty`
  // frames, `window-size` frames resize it, and when the job's stdin is the pty (tty_stdin),
  // `stdin` frames are written into it (then `in` is unused).
  UniqueFd tty;
  bool tty_stdin = false;
};

// A signal the anchor sent that the job has not received yet (held during a move).
struct HeldSignal {
  int signo = 0;
  bool group = false;
};

// What a source shepherd hands over (begin_handoff) and a target shepherd starts from.
struct HandoffState {
  StreamOffsets at;         // the stream's offsets when the anchor acknowledged the handoff
  std::uint32_t epoch = 0;  // the epoch the target must attach with (chosen by the anchor)
  // stdin the job has not read yet, in order: what sat in the job's stdin pipe, then what the
  // shepherd still buffered. The pipe part is copied (tee(2)), not taken: the source's pipe keeps
  // it, so a cancelled move resumes with nothing to put back. A target with a fresh pipe
  // pre-fills both parts (unconsumed_stdin()); one that keeps the job's old pipe only the buffer.
  std::string stdin_in_pipe;
  std::string stdin_buffered;
  // A job whose stdin is its pty: the input its line discipline held, typed but not read yet
  // (copied, not taken: copy_pty_input). A target types it into its new pty, echo off, before the
  // job runs; it comes before stdin_buffered (which the shepherd had not written into the pty).
  std::string tty_input;
  // The job's stdin is to be closed after those bytes (the anchor's stdin ended, or the job had
  // closed it).
  bool stdin_ended = false;
  // Signals that reached the source after it announced the move: the job must get them once it
  // runs again (source: after `resumed`; target: after `attached`), in this order.
  std::vector<HeldSignal> held_signals;
  // The job had already ended (killed while frozen): its wait status. A move of such a job
  // should be cancelled; the source then reports the exit.
  std::optional<int> wait_status;

  std::string unconsumed_stdin() const { return stdin_in_pipe + stdin_buffered; }
};

// The source side of a move, for the migration code. Thread-safe: call it from the migration's own
// thread (the relay keeps running meanwhile: heartbeats, output before the freeze) or from the
// MigrationHandler itself (the relay loop then runs nested until the step is done). Each call
// waits for its step at most `timeout_ms`; a step that timed out goes on in the relay, and the
// caller settles the move with cancel_handoff or finish_handoff. After the relay has ended every
// call fails.
class MigrationControl {
 public:
  virtual ~MigrationControl() = default;
  // Precondition: the job is frozen (it writes and reads nothing until resumed). Announces the
  // move (`migrating`: the anchor holds stdin and signals from now on), reads the job's output
  // pipes empty into the stream, sends `handoff` with the offsets and waits for `handoff-ack`.
  // Returns what a target needs to continue the stream.
  virtual Result<HandoffState> begin_handoff(int timeout_ms) = 0;
  // The move failed: asks the anchor to let this copy continue (`resume`). true: `resumed`, thaw
  // the job here (held signals are delivered, stdin flows again). false: the anchor chose the
  // target (`rejected`), or the stream is gone: this copy must die (the shepherd kills it when the
  // relay ends, which it does right away).
  virtual Result<bool> cancel_handoff(int timeout_ms) = 0;
  // The move committed (the target attached): the old stream is closed without an exit frame,
  // the relay ends, and the shepherd kills this copy and removes its job record.
  virtual Status finish_handoff() = 0;
  // The job this shepherd runs: its spec (what a target needs to host it) and its main process
  // as this node sees it (what the engine checkpoints). Fixed for the relay's life.
  virtual const JobSpec& spec() const = 0;
  virtual pid_t job_pid() const = 0;
};

// Installed by the migration code at program start (before the daemon forks its shepherd
// launcher); called on the relay's thread for each connection accepted on a shepherd's control
// endpoint. It should return soon (the relay waits meanwhile): hand `conn` and `control` to a
// thread of its own. `control` stays valid (failing) after the relay ends.
using MigrationHandler =
    std::function<void(UniqueFd conn, std::shared_ptr<MigrationControl> control)>;
void set_migration_handler(MigrationHandler handler);

// <state_dir>/jobs/<id>.sock: the unix SOCK_SEQPACKET socket a job's shepherd listens on.
std::string control_endpoint_path(const std::string& state_dir, const std::string& id);

class Relay {
 public:
  enum class Phase {
    // A job of ours runs or has ended.
    kRunning,     // the job runs (its end is not known yet): relay both ways
    kDraining,    // the job has ended: read its output pipes to EOF, then queue the exit frame
    kFinal,       // the last frame (exit or refused) is queued: only sending remains
    kDone,        // the last frame has been sent
    kAnchorGone,  // the stream broke or carried garbage: the job must not outlive it
    // A target shepherd, before the anchor has accepted its stream.
    kAttaching,   // `attach` sent; waiting for `attached` (-> kRunning) or `rejected`
    // A source shepherd during a move (the job is frozen).
    kHandingOff,  // `migrating` sent; the job's output pipes are being read empty
    kHandedOff,   // `handoff` sent; waiting for `handoff-ack`
    kParked,      // acknowledged: the anchor holds stdin and signals; waiting for the move's end
    kResuming,    // `resume` sent; waiting for `resumed` (-> kRunning/kDraining) or `rejected`
    kSuperseded,  // the anchor chose the target (`rejected` while parked): this copy stays frozen
                  // for the migration code (a post-copy target may still need its memory) until
                  // finish_handoff or cancel_handoff, at most kAbandonedMoveMs
    kStreamLost,  // the stream broke after `handoff`: the same wait (the anchor may still accept
                  // the target)
    // Ends.
    kRejected,    // the anchor chose the other copy: this one must die
    kDetached,    // finish_handoff: the job belongs to the target now; this copy must die
  };

  // `host` must outlive the relay. The stream is made non-blocking here.
  Relay(UniqueFd stream, JobPipes pipes, JobHost* host, std::string job_id, Logger log);
  ~Relay();

  // The job's spec, for the migration code (MigrationControl::spec, which keeps a copy).
  void set_job_spec(const JobSpec& spec);
  // Offsets to count from (a target continues its source's counts; a new job starts at 0).
  void set_offsets(const StreamOffsets& at) { at_ = at; }

  // Listens on `path` (replacing a stale socket) for the migration code; mode 0600.
  Status open_control_endpoint(const std::string& path);
  // The same, once run() has sent its first frames (off a job's start path); a failure is logged.
  void open_control_endpoint_later(std::string path) { endpoint_later_ = std::move(path); }

  // Where a frame's payload comes from: bytes to copy, or a job output pipe (read in place into
  // the outgoing queue, or spliced from the pipe into the stream when the pipe holds much).
  struct OutputPipe;
  struct Payload {
    std::string_view bytes;
    OutputPipe* pipe = nullptr;
  };
  // The one way out: every frame the shepherd sends is queued here, in order. A frame the phase
  // does not allow is dropped with an error in the log (nothing after the last frame; nothing but
  // heartbeats and `resume` after `handoff`); queueing exit or refused moves the phase to kFinal.
  void queue_frame(FrameType type, Payload payload);
  void queue_frame(FrameType type, std::string_view bytes = {}) { queue_frame(type, Payload{bytes, nullptr}); }

  // The job ended before the relay started (its exec failed): its output is still read to EOF.
  void job_ended(int wait_status);

  // A target's start: sends `attach` for `epoch` (the relay then waits in kAttaching) with the
  // stdin to pre-fill and the signals to deliver once attached. `on_attached` runs once the anchor
  // accepted the stream (e.g. to thaw the job); if it fails, the job is killed and the stream
  // closed (the anchor reports the job lost).
  void start_attach(std::uint32_t epoch, const std::string& node, const HandoffState& state,
                    std::function<Status()> on_attached);

  // Runs until the relay ends: kDone, kAnchorGone, kRejected or kDetached. In all but kDone the
  // caller kills the job (its copy here is not the job any more, or has lost its anchor).
  Phase run();
  // After kDone: half-closes the stream and waits (bounded) for the anchor to close its end, so
  // that our close cannot reset a connection with output still in flight.
  void linger();

  Phase phase() const { return phase_; }
  const StreamOffsets& offsets() const { return at_; }
  // Hands the job's pipes back (after run() ended in kDetached: a test's "target" in the same
  // process continues with them).
  JobPipes take_pipes();

  // One of the job's output pipes and what the relay does with it.
  struct OutputPipe {
    UniqueFd fd;
    FrameType data;
    FrameType eof;
    // The anchor asked us to close it while a spliced frame from it was still unfinished.
    bool close_after_splice = false;
    bool is_tty = false;  // a pty master: never spliced, and EIO is its end of file
  };

  class Control;  // MigrationControl's implementation (relay.cpp)

 private:
  // The job's stdin, as the anchor's frames drive it.
  enum class StdinState {
    kOpen,        // bytes from the anchor are buffered and written as the job reads
    kEofPending,  // the anchor's stdin ended: the job's stdin closes once the buffer is written
    kClosed,      // the job's stdin is closed: what still comes is discarded (and its credit returned)
  };
  struct Command;

  bool ended() const;
  bool moving() const;  // a source between `migrating` and the move's end
  void loop_once(std::int64_t deadline_ms);  // deadline_ms 0: none
  bool handle_stream_input();  // false: the stream is gone or unusable
  bool handle_frame(FrameType type, const char* p, std::uint32_t n);
  bool flush_stream();         // false: the anchor is gone
  bool continue_splice();      // false: the anchor is gone
  bool try_start_splice(OutputPipe& p);
  void read_output_in_place(OutputPipe& p);
  bool output_drained() const;
  void write_job_stdin();
  void close_job_stdin();
  void close_output(OutputPipe& p);
  void send_credit(std::uint32_t n, bool force);
  void grant_fresh_credit();
  void deliver_signal(int signo, bool group);
  void deliver_held_signals();
  void check_job_end();
  void stream_lost();
  bool last_frame_queued() const { return phase_ == Phase::kFinal || phase_ == Phase::kDone; }
  bool frame_allowed(FrameType type) const;
  Result<std::string> copy_stdin_pipe() const;

  // Migration commands (from Control), run on the relay's thread.
  void accept_control_connection();
  void take_commands();
  void start_command(const std::shared_ptr<Command>& cmd);
  void complete(const std::shared_ptr<Command>& cmd, Status status);
  void complete_active(Status status);
  void run_nested_until(const std::shared_ptr<Command>& cmd, std::int64_t deadline_ms);
  void on_handoff_ack(const HandoffAckMsg& ack);
  void back_to_running();

  UniqueFd sock_;
  JobHost* host_;
  std::string id_;
  Logger log_;
  Phase phase_ = Phase::kRunning;
  std::optional<int> wait_status_;  // the job's, once it has ended
  StreamOffsets at_;                // stdout/stderr sent, stdin/signals received, since the job started

  UniqueFd job_in_;
  OutputPipe out_pipe_;
  OutputPipe err_pipe_;
  OutputPipe tty_pipe_;  // the pty master's output (kTty frames), if the job has a pty
  UniqueFd tty_ctl_;     // the pty master, for window sizes (tty_pipe_ closes at the job's end)
  bool stdin_tty_ = false;       // job_in_ is the pty master
  char stdin_last_byte_ = '\n';  // the last byte written into the pty (see close_job_stdin)
  StdinState stdin_state_ = StdinState::kOpen;

  ByteBuffer out_{4 << 20};              // frames to the anchor
  ByteBuffer in_{2 << 20};               // bytes from the anchor, not yet parsed
  ByteBuffer stdin_{kStdinWindowBytes};  // stdin for the job, not yet written to its pipe
  std::uint32_t credit_owed_ = 0;
  // Bytes buffered beyond the window (a target pre-filled with more than it grants): paid back
  // from the credit the job's reads would return.
  std::uint64_t credit_debt_ = 0;
  std::int64_t last_send_ms_ = 0;

  // Signals received after `migrating` (the job is frozen): delivered after `resumed`, or handed
  // to the target.
  std::vector<HeldSignal> held_signals_;
  // A target's: run once `attached` arrives.
  std::function<Status()> on_attached_;
  std::int64_t stream_lost_at_ms_ = 0;

  // The control endpoint and the migration's commands.
  UniqueFd listen_fd_;
  std::string listen_path_;
  std::string endpoint_later_;
  std::shared_ptr<Control> control_;
  std::shared_ptr<Command> active_;  // the step in progress
  bool in_handler_ = false;

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

const char* to_string(Relay::Phase phase);

}  // namespace osmo::run
