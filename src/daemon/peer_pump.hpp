// SPDX-License-Identifier: GPL-2.0-or-later
// The pump of an encrypted peer stream. Services read and write plain bytes on a socket as they
// always did; the handshake (peer_link) gives them one end of a local socket pair instead of the
// TCP connection, and a pump between the pair's other end and the TCP connection seals what the
// service writes into channel frames (wire/sealed_channel.hpp) and opens what the peer sent.
//
//   service ─ plain ─ [socketpair] ─ pump ─ sealed frames over TCP ─ pump ─ [socketpair] ─ service
//
// Why a separate process and not a thread of the daemon: a peer stream outlives the process that
// opened it. `osmo run` receives the stream of its job over the control socket, a shepherd and a
// migration target receive theirs at spawn, and all of them keep running when the daemon restarts.
// A pump in its own process (double fork, no exec, only the two sockets kept open) follows the
// stream, not the daemon: the service's fd stays an ordinary socket that can be passed anywhere,
// and the stream lives until both ends close it.
//
// The pump ends the stream at the first frame that fails (bad tag, malformed header, an end
// frame with data) and when the TCP connection ends without an end frame (a truncated or cut
// stream: a dead peer or an attacker's FIN/RST): it shuts both sockets, so the service reads EOF
// and the peer's pump sees a cut stream. Each is counted (pump_counters()).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "wire/sealed_channel.hpp"

namespace osmo::daemon {

struct ChannelKeys {
  wire::Key send{};
  wire::Key recv{};
  wire::SealSuite suite = wire::SealSuite::kChaCha20Poly1305;
  std::uint64_t send_seq = 0;  // the handshake may have sealed frames already (the header)
  std::uint64_t recv_seq = 0;
};

// Counted by every pump this process started, in memory shared with them (an anonymous shared
// mapping made before the first fork), so the daemon's metrics see what its pumps saw.
struct PumpCounters {
  std::atomic<std::uint64_t> streams{0};         // encrypted streams whose pump started
  std::atomic<std::uint64_t> frames_refused{0};  // a frame failed its tag or header check
  std::atomic<std::uint64_t> streams_cut{0};     // TCP ended without an end frame (truncated)
  std::atomic<std::uint64_t> bytes_sealed{0};    // plaintext bytes sent, all pumps
  std::atomic<std::uint64_t> bytes_opened{0};    // plaintext bytes received, all pumps
};
PumpCounters& pump_counters();

enum class PumpEnd : std::uint8_t {
  kClean,    // both directions ended with an end frame, or the service closed its end
  kRefused,  // a frame failed its check: stream closed
  kCut,      // TCP ended or broke without an end frame: stream closed
  kAppGone,  // the service's end failed (not a close)
};
const char* to_string(PumpEnd e);

// Pumps between `tcp` (sealed frames) and `inner` (plain bytes) in the calling thread until the
// stream is over; both fds are made non-blocking and are shut down, not closed, on return.
PumpEnd run_pump(int tcp, int inner, const ChannelKeys& keys, PumpCounters& counters);
// The same with sealer and opener made by the caller (before a fork: see start_pump).
PumpEnd run_pump(int tcp, int inner, wire::ChannelSealer& sealer, wire::ChannelOpener& opener,
                 PumpCounters& counters);

// Starts the pump in a process of its own for the TCP connection `tcp`; returns the service's
// end (a SOCK_CLOEXEC AF_UNIX stream socket). The keys are wiped from this process.
Result<UniqueFd> start_pump(UniqueFd tcp, ChannelKeys keys);

}  // namespace osmo::daemon
