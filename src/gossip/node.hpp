// SPDX-License-Identifier: GPL-2.0-or-later
// The gossip node: SWIM-style membership and failure detection plus MOSIX-style load
// dissemination, as one pure, tick-driven state machine. It never reads a clock, opens a socket
// or draws randomness itself: its owner (the daemon, the simulator, a unit test) injects a Clock,
// a Transport and a Random, feeds it incoming datagrams and calls tick() regularly.
//
// Contract with the daemon and the simulator (names here are relied upon; add, don't rename).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "base/result.hpp"
#include "env/clock.hpp"
#include "env/endpoint.hpp"
#include "env/random.hpp"
#include "env/transport.hpp"
#include "gossip/defaults.hpp"

namespace osmo::gossip {

enum class MemberState : std::uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };
const char* to_string(MemberState s);

// What a node says about its own load; carried in load gossip. Computed by the daemon from
// platform samples through policy::LoadEstimator.
struct LoadInfo {
  double load = 0;      // smoothed runnable tasks / effective capacity (1.0 = full)
  double runnable = 0;  // smoothed runnable task count
  double cpus = 0;      // effective CPU count (cpuset, quota)
  double speed = 1.0;   // relative CPU speed (1.0 = reference)
  std::uint64_t mem_free_mb = 0;
  std::uint64_t mem_total_mb = 0;
  std::uint32_t jobs = 0;  // osmo jobs running on the node
  std::uint32_t flags = 0;  // kLoadFlag* below: what the node takes (docs/policy.md)
};

// LoadInfo::flags. A node that is draining takes no new job and no migration; a node configured
// `balance = false` takes no automatic migration. Unknown bits are ignored by older nodes.
inline constexpr std::uint32_t kLoadFlagDraining = 1;
inline constexpr std::uint32_t kLoadFlagNoAutoMigration = 2;

struct MemberView {
  std::string name;
  env::Endpoint addr;
  MemberState state = MemberState::kAlive;
  std::uint64_t incarnation = 0;
  bool is_self = false;
  std::optional<LoadInfo> load;  // absent until first heard
  env::TimeMs load_age_ms = 0;   // age of `load` at the time of the call
  env::TimeMs state_age_ms = 0;  // time since the state last changed
};

struct Config {
  std::string node_name;
  env::Endpoint advertise;           // how other nodes reach this one
  std::vector<env::Endpoint> seeds;  // any live members; may include ourselves
  std::vector<std::uint8_t> key;     // the 32-byte cluster key (wire::derive_key of the secret);
                                     // datagrams use a gossip subkey derived from it
  // Encrypt datagram bodies (XChaCha20-Poly1305). false sends them in clear (for tcpdump) but
  // still authenticated and replay-protected; every node must use the same setting (a datagram
  // in the other mode is dropped and counted as dropped_encryption_mismatch).
  bool encrypt = true;
  env::TimeMs probe_interval_ms = kDefaultProbeIntervalMs;  // one direct probe per interval
  env::TimeMs probe_timeout_ms = kDefaultProbeTimeoutMs;    // then indirect probes
  int indirect_probes = kDefaultIndirectProbes;
  env::TimeMs suspicion_timeout_ms = kDefaultSuspicionTimeoutMs;  // suspect -> dead unless refuted
  env::TimeMs load_interval_ms = kDefaultLoadIntervalMs;  // MOSIX: one load message per interval
  int load_window = kDefaultLoadWindow;  // entries about others carried per load message
  env::TimeMs join_retry_ms = kDefaultJoinRetryMs;
  env::TimeMs dead_forget_ms = kDefaultDeadForgetMs;  // dead/left members are forgotten after this
  // Added by gossip (see defaults.hpp for the reasoning behind each value):
  env::TimeMs sync_interval_ms = kDefaultSyncIntervalMs;  // anti-entropy with one random peer
  int retransmit_mult = kDefaultRetransmitMult;  // rumours are sent mult * ceil(log10(n+1)) times
  // Incarnation to start from. 0 is fine: a restarted node learns what the cluster remembers
  // about it when it joins and refutes it with a higher number. The daemon may pass wall-clock
  // seconds to win that race even before the first sync answer.
  std::uint64_t initial_incarnation = 0;
};

// Why datagrams were dropped; each kind has its own counter.
struct Counters {
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  std::uint64_t dropped_bad_mac = 0;
  std::uint64_t dropped_bad_version = 0;
  std::uint64_t dropped_malformed = 0;
  std::uint64_t dropped_foreign = 0;  // well-formed but not for us / from ourselves
  // Authentic, but sent outside the replay window (clock skew or a late replay) or a nonce
  // already seen from that sender (a replay).
  std::uint64_t dropped_replay = 0;
  // Authentic, but encrypted while we run in clear (gossip_encryption) or the other way round.
  std::uint64_t dropped_encryption_mismatch = 0;
  // Added by gossip: protocol events, for tests, the simulator and `osmo nodes`.
  std::uint64_t probes_sent = 0;      // direct probes started
  std::uint64_t indirect_probes = 0;  // probes that needed ping-req
  std::uint64_t suspicions = 0;       // members this node suspected after a failed probe
  std::uint64_t refutations = 0;      // incarnation bumps to refute a claim about ourselves
};

// Checks a Config before a Node is built from it (name and key present and sized, timers
// positive, limits respected). A Node built from an invalid Config logs the reason and stays
// inert: it sends nothing and drops every datagram.
Status validate(const Config& config);

class Node {
 public:
  // `wall_clock` gives the send times in datagram envelopes and judges those received (replay
  // window): wall-clock ms, comparable between nodes. nullptr: `clock` serves (the simulator and
  // the tests run every node on one virtual timeline). The daemon passes CLOCK_REALTIME.
  // `nonces` draws the envelopes' nonces; nullptr: libsodium's CSPRNG (the daemon). The simulator
  // passes a seeded Random of its own, so that a seed replays byte for byte; it must never be
  // `random` itself, whose draws are the protocol's. Nonces must not repeat under one key:
  // 192 random bits per datagram make that a non-event.
  Node(Config config, const env::Clock& clock, env::Transport& transport, env::Random& random,
       Logger log, const env::Clock* wall_clock = nullptr, env::Random* nonces = nullptr);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void start();  // begin joining through the seeds (no-op if none: we are the first node)
  void tick();   // does all timed work; call at least every 10-50 ms
  void on_datagram(const env::Endpoint& from, std::span<const std::uint8_t> datagram);
  void set_local_load(const LoadInfo& load);
  void leave();  // announce a graceful leave; the node then stops probing

  std::vector<MemberView> members() const;  // self included
  const Counters& counters() const;
  const Config& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace osmo::gossip
