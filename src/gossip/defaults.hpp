// SPDX-License-Identifier: GPL-2.0-or-later
// Every tunable of the gossip protocol and every limit it enforces, as a named constant with the
// reason for its value. Config (node.hpp) takes its defaults from here; docs/protocol.md explains
// how the timers interact.
#pragma once

#include <cstddef>
#include <cstdint>

#include "env/clock.hpp"
#include "env/transport.hpp"

namespace osmo::gossip {

// ---- timers (Config defaults) ----

// SWIM's protocol period: each node directly probes one member per period. 500 ms finds a failed
// node within about one period on average (every member probes someone each period, in a
// shuffled round robin) while costing each node only ~4 probe datagrams per second.
inline constexpr env::TimeMs kDefaultProbeIntervalMs = 500;
// Wait for a direct ack before asking others to probe. A LAN round trip is well under 1 ms, so
// 200 ms only fires when the peer (or its scheduler) is really late, and leaves 300 ms of the
// period for the indirect round trip (two hops each way).
inline constexpr env::TimeMs kDefaultProbeTimeoutMs = 200;
// SWIM's k, as in memberlist: with independent loss p, a live node is wrongly suspected only if
// the direct probe and all k indirect paths fail, which falls as p^k.
inline constexpr int kDefaultIndirectProbes = 3;
// Suspect -> dead unless refuted, for clusters up to 10 nodes; multiplied by log10(n) above that
// (as memberlist does) because a refutation needs O(log n) gossip rounds to reach everyone.
// 2.5 s = 5 probe periods: the suspect is probed by others (and so hears the rumour) several
// times and its refutation rides on its own probes and load messages.
inline constexpr env::TimeMs kDefaultSuspicionTimeoutMs = 2500;
// MOSIX-style load gossip: one small message to one random peer every 250 ms keeps views of
// load at most a few seconds old in clusters of hundreds while using ~4 datagrams/s per node.
inline constexpr env::TimeMs kDefaultLoadIntervalMs = 250;
// Entries about other nodes carried in each load message besides the sender's own (half the
// freshest, half round robin; see node.cpp). Each entry is ~35-45 bytes, so 16 use about half a
// datagram and leave the rest for piggybacked membership rumours. Measured with 64 nodes
// (tests/gossip/load_test.cpp): window 8 gives a median age of 2.5 s and a 99th percentile of
// 11 s; window 16 gives 1.9 s and 6 s. The ages of a full view grow with n / window.
inline constexpr int kDefaultLoadWindow = 16;
// A joining node asks its seeds again after this long without an answer.
inline constexpr env::TimeMs kDefaultJoinRetryMs = 1000;
// Dead and left members stay in the view (so stale rumours about them lose against the recorded
// incarnation) for a minute, much longer than a rumour survives (retransmit limit), then vanish.
inline constexpr env::TimeMs kDefaultDeadForgetMs = 60'000;
// Anti-entropy: every interval, exchange a slice of the member table with one random peer, so
// a node that missed rumours (loss, partition, pause) converges. Scaled up with cluster size
// above kSyncScaleThreshold nodes (memberlist's pushPullScale) to bound total traffic.
inline constexpr env::TimeMs kDefaultSyncIntervalMs = 10'000;
inline constexpr std::size_t kSyncScaleThreshold = 32;
// Each membership update is piggybacked retransmit_mult * ceil(log10(n + 1)) times: SWIM's
// lambda * log(n) bound under which an infection-style rumour reaches every node with high
// probability. memberlist uses 4 on LANs.
inline constexpr int kDefaultRetransmitMult = 4;

// ---- protocol limits (enforced by encoder and decoder) ----

// Node names: short identifiers, shown in `osmo nodes`.
inline constexpr std::size_t kMaxNameBytes = 64;
// Host part of an endpoint: the longest DNS name.
inline constexpr std::size_t kMaxHostBytes = 253;
// Body bytes available in one datagram after the envelope (wire/sealed_datagram.hpp: 57 bytes
// plus the sender's name, at most kMaxNameBytes).
inline constexpr std::size_t kMaxBodyBytes = env::kMaxDatagramBytes - 57 - kMaxNameBytes;
// Repeated records (members, load entries, updates) in one message; a record is at least ~20
// bytes, so a full datagram cannot legitimately hold more.
inline constexpr std::size_t kMaxRecordsPerMessage = 64;
// Upper bound for Config::load_window (a window must fit one datagram; entries that do not fit
// are left out).
inline constexpr int kMaxLoadWindow = 32;
// Upper bound for Config::indirect_probes.
inline constexpr int kMaxIndirectProbes = 8;
// A load entry older than a day is nonsense (or a corrupt counter): rejected by the decoder.
inline constexpr env::TimeMs kMaxLoadAgeMs = 24LL * 3600 * 1000;

// ---- replay protection (gossip/replay_guard.hpp) ----

// A datagram whose send time differs from the receiver's wall clock by more than this is refused.
// NTP keeps LAN clocks within milliseconds; 30 s tolerates a badly served clock and the longest
// pause a datagram may spend in a queue, while a captured datagram can be replayed only within
// that time, and then only once (the nonce cache below).
inline constexpr env::TimeMs kReplayWindowMs = 30'000;
// Nonces remembered per sender. A sender sends a given receiver ~10 datagrams/s (probes, acks,
// load) in a small cluster, ~300 within the window's past half: older ones are forgotten under a
// floor that refuses only datagrams overtaken by newer ones (see replay_guard.hpp).
inline constexpr std::size_t kReplayCachePerSender = 256;
// Senders remembered (each datagram's sender inside the window). Together: at most 256K nonces,
// ~20 MB, whatever a flood sends; a cluster of 2,000 nodes stays far below.
inline constexpr std::size_t kReplayCacheSenders = 1024;

// ---- internal bounds ----

// Datagrams per side of one periodic sync; a join reply may be larger so that a new node sees
// the whole cluster (up to ~1,800 members) at once.
inline constexpr std::size_t kMaxSyncDatagrams = 8;
inline constexpr std::size_t kMaxJoinSyncDatagrams = 64;
// A leaving node announces `left` directly to this many random members, this many times, one
// probe interval apart: the leave is then lost only if all 15 datagrams are.
inline constexpr int kLeaveFanout = 3;
inline constexpr int kLeaveRounds = 5;
// Pending membership rumours; beyond this the most-retransmitted are dropped first.
inline constexpr std::size_t kMaxBroadcastQueue = 4096;
// Suspects we ping directly each probe interval (with the suspicion in the ping) besides the
// round-robin probe: a live suspect refutes on receipt and its ack ends our suspicion. Three keep
// the extra traffic small during a real mass failure while making it unlikely, even at 20% loss,
// that we never get through to a live suspect before its timeout.
inline constexpr std::size_t kSuspectRechecks = 3;
// Indirect probes we relay for others at once (one per ping-req; they expire after one period).
inline constexpr std::size_t kMaxRelays = 64;

}  // namespace osmo::gossip
