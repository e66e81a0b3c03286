// SPDX-License-Identifier: GPL-2.0-or-later
// The gossip node's state machine (see node.hpp for the contract, docs/protocol.md for the
// protocol). Everything here runs on the caller's thread, inside start(), tick(), on_datagram(),
// set_local_load() and leave(); time comes only from the injected Clock, randomness from the
// injected Random, and every datagram leaves through the injected Transport.
//
// Membership follows SWIM as refined by memberlist:
//  - each probe interval, ping the next member of a shuffled round robin; no ack within
//    probe_timeout -> ping-req through k random members; no ack by the end of the interval ->
//    suspect it (at the incarnation we know);
//  - a suspect becomes dead after the suspicion timeout unless it refutes: a node that hears it
//    is suspected or dead bumps its incarnation above the claim and announces itself alive;
//  - claims are ordered by incarnation: alive(i) beats suspect/dead(j) iff i > j; suspect(i)
//    beats alive(j) iff i >= j; dead/left(i) beats alive/suspect(j) iff i >= j;
//  - every accepted change is queued as a rumour and piggybacked on outgoing messages a bounded
//    number of times (broadcast_queue.hpp);
//  - anti-entropy: a periodic sync exchanges member-table slices with a random peer (and now and
//    then with a member we believe dead, so that healed partitions merge again).
// Load follows MOSIX: each load interval, one message to one random live peer with our own load
// and the freshest entries we heard, each with its age.
#include "gossip/node.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>
#include <utility>

#include "gossip/broadcast_queue.hpp"
#include "gossip/replay_guard.hpp"
#include "gossip/messages.hpp"
#include "wire/mac.hpp"

namespace osmo::gossip {

const char* to_string(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "?";
}

Status validate(const Config& c) {
  if (c.node_name.empty() || c.node_name.size() > kMaxNameBytes)
    return make_error("gossip: node name '{}' must be 1..{} bytes", c.node_name, kMaxNameBytes);
  if (c.advertise.host.empty() || c.advertise.host.size() > kMaxHostBytes || c.advertise.port == 0)
    return make_error("gossip: bad advertise address '{}'", c.advertise.str());
  if (c.key.size() != wire::kKeyBytes)
    return make_error("gossip: MAC key is {} bytes; expected {}", c.key.size(), wire::kKeyBytes);
  if (c.probe_interval_ms <= 0 || c.probe_timeout_ms <= 0 ||
      c.probe_timeout_ms >= c.probe_interval_ms)
    return make_error("gossip: need 0 < probe_timeout_ms ({}) < probe_interval_ms ({})",
                      c.probe_timeout_ms, c.probe_interval_ms);
  if (c.suspicion_timeout_ms <= 0 || c.load_interval_ms <= 0 || c.join_retry_ms <= 0 ||
      c.dead_forget_ms <= 0 || c.sync_interval_ms <= 0)
    return make_error("gossip: every timer must be positive");
  if (c.indirect_probes < 0 || c.indirect_probes > kMaxIndirectProbes)
    return make_error("gossip: indirect_probes {} outside 0..{}", c.indirect_probes,
                      kMaxIndirectProbes);
  if (c.load_window < 0 || c.load_window > kMaxLoadWindow)
    return make_error("gossip: load_window {} outside 0..{}", c.load_window, kMaxLoadWindow);
  if (c.retransmit_mult < 1 || c.retransmit_mult > 16)
    return make_error("gossip: retransmit_mult {} outside 1..16", c.retransmit_mult);
  return ok_status();
}

namespace {

struct Member {
  std::string name;
  env::Endpoint addr;
  MemberState state = MemberState::kAlive;
  std::uint64_t incarnation = 0;
  env::TimeMs state_changed_ms = 0;
  env::TimeMs suspect_deadline_ms = 0;  // meaningful while suspect
  std::optional<LoadInfo> load;
  env::TimeMs load_heard_ms = 0;  // our clock's time at which `load` was fresh (receipt - age)
  std::size_t index = 0;          // position in Impl::members
};

constexpr env::TimeMs kNever = std::numeric_limits<env::TimeMs>::max();

bool is_gone(MemberState s) {
  return s == MemberState::kDead || s == MemberState::kLeft;
}

LoadInfo sanitized(LoadInfo l) {
  // The decoder rejects non-finite or negative numbers, so one bad sample must not make all our
  // load messages undecodable.
  for (double* d : {&l.load, &l.runnable, &l.cpus, &l.speed})
    if (!std::isfinite(*d) || *d < 0) *d = 0;
  return l;
}

}  // namespace

struct Node::Impl {
  Impl(Config c, const env::Clock& clk, env::Transport& t, env::Random& r, Logger l, const env::Clock* wall,
       env::Random* n)
      : cfg(std::move(c)),
        clock(clk),
        wall_clock(wall != nullptr ? *wall : clk),
        transport(t),
        random(r),
        nonces(n),
        log(std::move(l)),
        replay(kReplayWindowMs, kReplayCacheSenders, kReplayCachePerSender) {
    if (Status st = validate(cfg); !st.ok()) {
      log.error("invalid configuration, node stays inert: {}", st.error().str());
    } else {
      wire::Key cluster_key{};
      std::copy(cfg.key.begin(), cfg.key.end(), cluster_key.begin());
      key = msg::gossip_key(cluster_key);
      valid = true;
    }
    self.name = cfg.node_name;
    self.addr = cfg.advertise;
    self.incarnation = cfg.initial_incarnation;
    self.state_changed_ms = clock.now_ms();
    // A random start, so that a restarted process on the same address does not take a late ack
    // meant for its previous life's probe with the same number as an answer to its own.
    next_seq = (random.next_u64() >> 16) + 1;
    for (const auto& s : cfg.seeds)
      if (s != cfg.advertise && std::find(seeds.begin(), seeds.end(), s) == seeds.end())
        seeds.push_back(s);
  }

  Config cfg;
  const env::Clock& clock;
  const env::Clock& wall_clock;  // send times in envelopes; judging received ones
  env::Transport& transport;
  env::Random& random;
  env::Random* nonces;  // envelope nonces; nullptr: libsodium's CSPRNG
  Logger log;
  wire::Key key{};  // the gossip subkey of the cluster key
  bool valid = false;
  Counters counters;
  ReplayGuard replay;

  env::TimeMs next_skew_warning_ms = 0;
  // True at most once per 10 s: the warning about datagrams outside the replay window.
  bool now_for_skew_warning() {
    const env::TimeMs now = clock.now_ms();
    if (now < next_skew_warning_ms) return false;
    next_skew_warning_ms = now + 10'000;
    return true;
  }

  wire::DatagramMode mode() const { return cfg.encrypt ? wire::DatagramMode::kSealed : wire::DatagramMode::kClear; }

  Member self;
  std::vector<std::unique_ptr<Member>> members;  // everyone but us, in probe order
  std::unordered_map<std::string, Member*> by_name;
  BroadcastQueue broadcasts;
  std::vector<env::Endpoint> seeds;  // Config::seeds without ourselves

  bool started = false;
  bool leaving = false;
  bool joined = false;
  env::TimeMs last_tick_ms = -1;
  env::TimeMs next_probe_ms = 0;
  env::TimeMs next_load_ms = 0;
  env::TimeMs next_sync_ms = 0;
  env::TimeMs next_join_ms = 0;
  env::TimeMs next_leave_ms = 0;
  int leave_rounds_left = 0;
  std::size_t probe_index = 0;
  std::size_t load_cursor = 0;  // round-robin half of the load window
  std::uint64_t next_seq = 1;

  struct Probe {
    bool active = false;
    std::string target;
    std::uint64_t seq = 0;
    env::TimeMs sent_ms = 0;
    bool indirect_sent = false;
  } probe;

  // A ping we send on behalf of a ping-req; its ack is forwarded to the requester.
  struct Relay {
    std::uint64_t our_seq = 0;
    std::uint64_t their_seq = 0;
    env::Endpoint requester;
    std::string target;
    env::TimeMs expires_ms = 0;
  };
  std::vector<Relay> relays;

  std::set<std::string> suspects;  // members in state suspect (their timers)
  std::set<std::string> gone;      // members dead or left (to be forgotten)
  // Lower bounds of the earliest suspicion deadline and the earliest forget time: the sets above
  // are scanned only when something may be due, not on every tick (a thousand-node simulation
  // ticks every node every few tens of ms, and after a partition half the table is gone).
  env::TimeMs next_suspect_check_ms = kNever;
  env::TimeMs next_forget_check_ms = kNever;
  // Others' load entries ordered by freshness, to pick the window of a load message.
  std::set<std::pair<env::TimeMs, std::string>> load_by_freshness;

  // ---- small helpers ----

  std::size_t cluster_size() const { return members.size() + 1; }

  Member* find(const std::string& name) {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  }

  static msg::MemberRecord record_of(const Member& m) {
    return {m.name, m.addr, m.incarnation, m.state};
  }

  int transmit_limit() const {
    int scale = static_cast<int>(std::ceil(std::log10(static_cast<double>(cluster_size()) + 1)));
    return cfg.retransmit_mult * std::max(1, scale);
  }

  env::TimeMs suspicion_timeout() const {
    double scale = std::max(1.0, std::log10(static_cast<double>(cluster_size())));
    return static_cast<env::TimeMs>(
        std::llround(static_cast<double>(cfg.suspicion_timeout_ms) * scale));
  }

  env::TimeMs sync_interval() const {
    std::size_t n = cluster_size();
    if (n <= kSyncScaleThreshold) return cfg.sync_interval_ms;
    double mult = std::ceil(std::log2(static_cast<double>(n)) -
                            std::log2(static_cast<double>(kSyncScaleThreshold))) +
                  1;
    return static_cast<env::TimeMs>(static_cast<double>(cfg.sync_interval_ms) * mult);
  }

  // Our address as carried in every message, so that a receiver that has not heard of us yet
  // learns us from the message itself. A leaving node omits it: nobody should add it anew.
  env::Endpoint own_addr() const { return leaving ? env::Endpoint{} : self.addr; }

  void send(const env::Endpoint& to, const msg::Builder& b) {
    std::vector<std::uint8_t> datagram;
    if (nonces != nullptr) {
      wire::DatagramNonce n;
      for (std::size_t i = 0; i < n.size(); i += 8) {
        const std::uint64_t r = nonces->next_u64();
        for (std::size_t k = 0; k < 8; ++k) n[i + k] = static_cast<std::uint8_t>(r >> (8 * k));
      }
      datagram = b.seal(key, wall_clock.now_ms(), mode(), &n);
    } else {
      datagram = b.seal(key, wall_clock.now_ms(), mode());
    }
    transport.send(to, datagram);
    ++counters.sent;
  }

  void piggyback(msg::Builder& b) { broadcasts.fill(b, transmit_limit()); }

  // Up to k distinct random members satisfying pred (memberlist's kRandomNodes: bounded tries).
  template <typename Pred>
  std::vector<Member*> random_members(std::size_t k, Pred pred) {
    std::vector<Member*> out;
    std::size_t n = members.size();
    for (std::size_t i = 0; i < 3 * n && out.size() < k; ++i) {
      Member* m = members[random.uniform(n)].get();
      if (!pred(*m) || std::find(out.begin(), out.end(), m) != out.end()) continue;
      out.push_back(m);
    }
    return out;
  }

  Member* random_alive() {
    auto v = random_members(1, [](const Member& m) { return m.state == MemberState::kAlive; });
    return v.empty() ? nullptr : v.front();
  }

  // ---- the member table ----

  Member* add_member(const msg::MemberRecord& r, env::TimeMs now) {
    auto m = std::make_unique<Member>();
    m->name = r.name;
    m->addr = r.addr;
    m->state = r.state;
    m->incarnation = r.incarnation;
    m->state_changed_ms = now;
    Member* raw = m.get();
    members.push_back(std::move(m));
    // Insert at a random position, so that a new node is not probed last by everyone at once.
    std::size_t last = members.size() - 1;
    std::size_t pos = random.uniform(members.size());
    std::swap(members[pos], members[last]);
    members[pos]->index = pos;
    members[last]->index = last;
    by_name.emplace(raw->name, raw);
    return raw;
  }

  void remove_member(Member* m) {
    std::string name = m->name;
    if (m->load) load_by_freshness.erase({m->load_heard_ms, name});
    suspects.erase(name);
    gone.erase(name);
    if (probe.active && probe.target == name) probe.active = false;
    std::size_t idx = m->index;
    std::size_t last = members.size() - 1;
    if (idx != last) {
      std::swap(members[idx], members[last]);
      members[idx]->index = idx;
    }
    members.pop_back();
    by_name.erase(name);
  }

  void shuffle_members() {
    for (std::size_t i = members.size(); i > 1; --i) {
      std::size_t j = random.uniform(i);
      std::swap(members[i - 1], members[j]);
    }
    for (std::size_t i = 0; i < members.size(); ++i) members[i]->index = i;
  }

  void set_state(Member& m, MemberState s, std::uint64_t incarnation, env::TimeMs now) {
    if (m.state != s) m.state_changed_ms = now;
    m.state = s;
    m.incarnation = incarnation;
    if (s == MemberState::kSuspect) {
      suspects.insert(m.name);
    } else {
      suspects.erase(m.name);
    }
    if (is_gone(s)) {
      gone.insert(m.name);
      next_forget_check_ms =
          std::min(next_forget_check_ms, m.state_changed_ms + cfg.dead_forget_ms);
    } else {
      gone.erase(m.name);
    }
  }

  // ---- applying claims (SWIM's ordering by incarnation) ----

  void refute(std::uint64_t claimed, const char* what, env::TimeMs now) {
    self.incarnation = std::max(self.incarnation, claimed) + 1;
    self.state_changed_ms = now;
    ++counters.refutations;
    broadcasts.push(record_of(self));
    log.info("refuting claim that we are {} at incarnation {}: now alive at incarnation {}", what,
             claimed, self.incarnation);
  }

  void on_alive(const msg::MemberRecord& r, env::TimeMs now) {
    if (r.name == self.name) {
      if (leaving) return;
      // A higher incarnation than ours is a previous life of this node (a restart): outbid it. The
      // same incarnation at another address is an impostor or a previous life elsewhere.
      if (r.incarnation > self.incarnation ||
          (r.incarnation == self.incarnation && r.addr != self.addr))
        refute(r.incarnation, "alive elsewhere", now);
      return;
    }
    Member* m = find(r.name);
    if (m == nullptr) {
      m = add_member({r.name, r.addr, r.incarnation, MemberState::kAlive}, now);
      broadcasts.push(record_of(*m));
      log.debug("member {} joined addr={} inc={}", r.name, r.addr.str(), r.incarnation);
      return;
    }
    if (r.incarnation <= m->incarnation) return;
    if (m->addr != r.addr)
      log.info("member {} moved from {} to {}", m->name, m->addr.str(), r.addr.str());
    if (m->state != MemberState::kAlive)
      log.debug("member {} alive again inc={} (was {})", m->name, r.incarnation,
                to_string(m->state));
    m->addr = r.addr;
    set_state(*m, MemberState::kAlive, r.incarnation, now);
    broadcasts.push(record_of(*m));
  }

  void on_suspect(const msg::MemberRecord& r, env::TimeMs now) {
    if (r.name == self.name) {
      if (!leaving && r.incarnation >= self.incarnation) refute(r.incarnation, "suspect", now);
      return;
    }
    Member* m = find(r.name);
    if (m == nullptr || r.incarnation < m->incarnation || m->state != MemberState::kAlive) return;
    set_state(*m, MemberState::kSuspect, r.incarnation, now);
    m->suspect_deadline_ms = now + suspicion_timeout();
    next_suspect_check_ms = std::min(next_suspect_check_ms, m->suspect_deadline_ms);
    broadcasts.push(record_of(*m));
    log.debug("member {} suspect inc={}", m->name, m->incarnation);
  }

  void on_dead(const msg::MemberRecord& r, bool left, env::TimeMs now) {
    if (r.name == self.name) {
      if (!leaving && r.incarnation >= self.incarnation)
        refute(r.incarnation, left ? "left" : "dead", now);
      return;
    }
    Member* m = find(r.name);
    if (m == nullptr || r.incarnation < m->incarnation) return;
    // Left is final for an incarnation; dead may still be upgraded to left (the node's own word).
    if (m->state == MemberState::kLeft || (m->state == MemberState::kDead && !left)) return;
    set_state(*m, left ? MemberState::kLeft : MemberState::kDead, r.incarnation, now);
    broadcasts.push(record_of(*m));
    log.debug("member {} {} inc={}", m->name, to_string(m->state), m->incarnation);
  }

  // A piggybacked rumour.
  void apply_update(const msg::MemberRecord& r, env::TimeMs now) {
    switch (r.state) {
      case MemberState::kAlive:
        on_alive(r, now);
        break;
      case MemberState::kSuspect:
        on_suspect(r, now);
        break;
      case MemberState::kDead:
        on_dead(r, false, now);
        break;
      case MemberState::kLeft:
        on_dead(r, true, now);
        break;
    }
  }

  // A sync entry. Another node's belief that a member is dead is only reason for us to suspect
  // it (and let it refute), as memberlist does: a stale table must not kill live nodes.
  void apply_sync_entry(const msg::MemberRecord& r, env::TimeMs now) {
    switch (r.state) {
      case MemberState::kAlive:
        on_alive(r, now);
        break;
      case MemberState::kSuspect:
      case MemberState::kDead:
        on_suspect({r.name, r.addr, r.incarnation, MemberState::kSuspect}, now);
        break;
      case MemberState::kLeft:
        on_dead(r, true, now);
        break;
    }
  }

  // ---- probing ----

  Member* next_probe_target() {
    for (std::size_t tries = 0; tries <= members.size(); ++tries) {
      if (probe_index >= members.size()) {
        shuffle_members();
        probe_index = 0;
        if (members.empty()) return nullptr;
      }
      Member* m = members[probe_index++].get();
      if (!is_gone(m->state)) return m;
    }
    return nullptr;
  }

  void start_probe(env::TimeMs now) {
    Member* t = next_probe_target();
    if (t == nullptr) return;
    probe = Probe{true, t->name, next_seq++, now, false};
    msg::Builder b(msg::Type::kPing, self.name, self.incarnation, own_addr());
    b.seq(probe.seq);
    b.target(t->name);
    // Tell a suspect directly, so that it can refute even if the rumour missed it.
    if (t->state == MemberState::kSuspect) (void)b.add_update(record_of(*t));
    piggyback(b);
    send(t->addr, b);
    ++counters.probes_sent;
  }

  void send_ping_reqs(const Member& t) {
    auto helpers = random_members(
        static_cast<std::size_t>(cfg.indirect_probes),
        [&](const Member& m) { return m.state == MemberState::kAlive && m.name != t.name; });
    for (Member* h : helpers) {
      msg::Builder b(msg::Type::kPingReq, self.name, self.incarnation, own_addr());
      b.seq(probe.seq);
      b.target(t.name);
      b.target_addr(t.addr);
      piggyback(b);
      send(h->addr, b);
    }
    if (!helpers.empty()) ++counters.indirect_probes;
  }

  void probe_tick(env::TimeMs now) {
    if (probe.active) {
      Member* t = find(probe.target);
      if (t == nullptr || is_gone(t->state)) {
        probe.active = false;
      } else {
        if (!probe.indirect_sent && now - probe.sent_ms >= cfg.probe_timeout_ms) {
          probe.indirect_sent = true;
          send_ping_reqs(*t);
        }
        if (now - probe.sent_ms >= cfg.probe_interval_ms) {
          probe.active = false;
          if (t->state == MemberState::kAlive) {
            ++counters.suspicions;
            log.debug("probe of {} failed: suspecting it at inc={}", t->name, t->incarnation);
            on_suspect({t->name, t->addr, t->incarnation, MemberState::kSuspect}, now);
          }
        }
      }
    }
    if (!probe.active && now >= next_probe_ms) {
      start_probe(now);
      recheck_suspects();
      next_probe_ms = now + cfg.probe_interval_ms;
    }
  }

  // Lifeguard's buddy system, made active: besides the round-robin probe, ping up to
  // kSuspectRechecks members we suspect and tell them so in the ping. A live suspect refutes on
  // the spot and its ack carries the new incarnation (every message is an alive claim by its
  // sender), so our suspicion ends even if every copy of the refutation rumour missed us. A dead
  // suspect just does not answer.
  void recheck_suspects() {
    if (suspects.empty()) return;
    std::vector<Member*> picks;
    if (suspects.size() <= kSuspectRechecks) {
      for (const auto& name : suspects)
        if (Member* m = find(name)) picks.push_back(m);
    } else {
      picks = random_members(kSuspectRechecks,
                             [](const Member& m) { return m.state == MemberState::kSuspect; });
    }
    for (Member* m : picks) {
      if (m->state != MemberState::kSuspect || m->name == probe.target) continue;
      msg::Builder b(msg::Type::kPing, self.name, self.incarnation, own_addr());
      b.seq(next_seq++);
      b.target(m->name);
      (void)b.add_update(record_of(*m));
      piggyback(b);
      send(m->addr, b);
    }
  }

  void check_suspects(env::TimeMs now) {
    if (now < next_suspect_check_ms) return;
    next_suspect_check_ms = kNever;
    std::vector<std::string> expired;
    for (auto it = suspects.begin(); it != suspects.end();) {
      Member* m = find(*it);
      if (m == nullptr || m->state != MemberState::kSuspect) {
        it = suspects.erase(it);
        continue;
      }
      if (now >= m->suspect_deadline_ms) {
        expired.push_back(*it);
      } else {
        next_suspect_check_ms = std::min(next_suspect_check_ms, m->suspect_deadline_ms);
      }
      ++it;
    }
    for (const auto& name : expired) {
      Member* m = find(name);
      log.info("member {} dead: suspicion not refuted within {}ms (inc={})", name,
               suspicion_timeout(), m->incarnation);
      on_dead({m->name, m->addr, m->incarnation, MemberState::kDead}, false, now);
    }
  }

  void forget_gone(env::TimeMs now) {
    if (now < next_forget_check_ms) return;
    next_forget_check_ms = kNever;
    std::vector<Member*> forget;
    for (auto it = gone.begin(); it != gone.end();) {
      Member* m = find(*it);
      if (m == nullptr || !is_gone(m->state)) {
        it = gone.erase(it);
        continue;
      }
      if (now - m->state_changed_ms >= cfg.dead_forget_ms) {
        forget.push_back(m);
      } else {
        next_forget_check_ms =
            std::min(next_forget_check_ms, m->state_changed_ms + cfg.dead_forget_ms);
      }
      ++it;
    }
    for (Member* m : forget) {
      log.debug("forgetting {} member {}", to_string(m->state), m->name);
      remove_member(m);
    }
  }

  // We were not run for `gap` ms (SIGSTOP, a swapped-out daemon, a stalled host). Acks that
  // arrived meanwhile could not be processed, so the in-flight probe proves nothing about its
  // target; and our suspicion timers ran while we could not hear refutations. Give both their
  // time back instead of blaming others for our own absence.
  void on_stall(env::TimeMs gap, env::TimeMs now) {
    log.info("not run for {}ms: voiding the in-flight probe, extending {} suspicion timers", gap,
             suspects.size());
    probe.active = false;
    relays.clear();
    for (const auto& name : suspects)
      if (Member* m = find(name)) m->suspect_deadline_ms += gap;
    if (next_suspect_check_ms != kNever) next_suspect_check_ms += gap;
    next_probe_ms = std::max(next_probe_ms, now);
  }

  // ---- sync (anti-entropy and join) ----

  void send_sync(const env::Endpoint& to, std::uint64_t flags, std::size_t max_datagrams) {
    std::size_t n = members.size();
    std::size_t start = n > 0 ? random.uniform(n) : 0;
    std::size_t done = 0;
    for (std::size_t d = 0; d < max_datagrams; ++d) {
      msg::Builder b(msg::Type::kSync, self.name, self.incarnation, own_addr());
      // Only the first datagram of a multi-datagram sync asks for an answer.
      b.flags(d == 0 ? flags : flags & ~msg::kSyncReplyWanted);
      if (d == 0) (void)b.add_member(record_of(self));
      while (done < n && b.add_member(record_of(*members[(start + done) % n]))) ++done;
      send(to, b);
      if (done >= n) break;
    }
  }

  void send_join(env::TimeMs now) {
    for (const auto& seed : seeds) {
      msg::Builder b(msg::Type::kSync, self.name, self.incarnation, own_addr());
      b.flags(msg::kSyncReplyWanted | msg::kSyncJoin);
      (void)b.add_member(record_of(self));
      send(seed, b);
    }
    next_join_ms = now + cfg.join_retry_ms;
    log.debug("join request sent to {} seeds", seeds.size());
  }

  void sync_tick(env::TimeMs now) {
    if (Member* peer = random_alive()) {
      send_sync(peer->addr, msg::kSyncReplyWanted, kMaxSyncDatagrams);
    } else if (!seeds.empty()) {
      // Everyone we know is gone (or we know nobody): go back to the seeds.
      send_join(now);
    }
    // Serf's reconnect: nobody probes the dead, so after a partition heals the two sides would
    // never talk again. Now and then sync with a member we believe dead; if it is in fact
    // alive, both sides refute and merge.
    std::size_t dead = 0, alive = 0;
    for (const auto& m : members) {
      if (m->state == MemberState::kDead) ++dead;
      if (m->state == MemberState::kAlive) ++alive;
    }
    if (dead > 0 && random.unit() < static_cast<double>(dead) / static_cast<double>(alive + dead)) {
      auto picks = random_members(1, [](const Member& m) { return m.state == MemberState::kDead; });
      if (!picks.empty()) send_sync(picks.front()->addr, msg::kSyncReplyWanted, kMaxSyncDatagrams);
    }
    // After a partition longer than dead_forget_ms the two sides have forgotten each other and
    // only the seeds still connect them: sync with a seed that we do not see alive. In a healthy
    // cluster every seed is an alive member and this sends nothing.
    if (!seeds.empty() && alive > 0) {
      const env::Endpoint& seed = seeds[random.uniform(seeds.size())];
      bool seen = std::any_of(members.begin(), members.end(), [&](const auto& m) {
        return m->state == MemberState::kAlive && m->addr == seed;
      });
      if (!seen) send_sync(seed, msg::kSyncReplyWanted, kMaxSyncDatagrams);
    }
  }

  // ---- load ----

  // The window: the freshest half of what we heard (MOSIX: fresh news spreads epidemically),
  // and the other half taken round robin over the whole table, so that every entry keeps
  // circulating. A window of only the freshest entries stops forwarding an entry as soon as
  // a few fresher ones arrived, and in clusters much larger than the window some pairs would
  // then hardly ever hear of each other.
  void send_load(env::TimeMs now) {
    Member* to = random_alive();
    if (to == nullptr) return;
    msg::Builder b(msg::Type::kLoad, self.name, self.incarnation, own_addr());
    if (self.load) (void)b.add_load({self.name, now - self.load_heard_ms, *self.load});
    auto usable = [&](const Member* m) {
      return m != nullptr && m != to && m->load && !is_gone(m->state);
    };
    const int freshest = (cfg.load_window + 1) / 2;
    std::vector<const Member*> chosen;
    for (auto it = load_by_freshness.rbegin();
         it != load_by_freshness.rend() && static_cast<int>(chosen.size()) < freshest; ++it) {
      const Member* m = find(it->second);
      if (usable(m)) chosen.push_back(m);
    }
    for (std::size_t scanned = 0;
         scanned < members.size() && static_cast<int>(chosen.size()) < cfg.load_window; ++scanned) {
      if (load_cursor >= members.size()) load_cursor = 0;
      const Member* m = members[load_cursor++].get();
      if (usable(m) && std::find(chosen.begin(), chosen.end(), m) == chosen.end())
        chosen.push_back(m);
    }
    for (const Member* m : chosen)
      if (!b.add_load({m->name, now - m->load_heard_ms, *m->load})) break;
    piggyback(b);
    send(to->addr, b);
  }

  void on_load_records(const std::vector<msg::LoadRecord>& recs, env::TimeMs now) {
    for (const auto& rec : recs) {
      if (rec.name == self.name) continue;
      Member* m = find(rec.name);
      if (m == nullptr) continue;
      env::TimeMs heard = now - rec.age_ms;
      if (m->load && heard <= m->load_heard_ms) continue;  // we hold a fresher entry
      if (m->load) load_by_freshness.erase({m->load_heard_ms, m->name});
      m->load = rec.load;
      m->load_heard_ms = heard;
      load_by_freshness.insert({heard, m->name});
    }
  }

  // ---- leave ----

  void leave_tick(env::TimeMs now) {
    if (leave_rounds_left <= 0 || now < next_leave_ms) return;
    --leave_rounds_left;
    next_leave_ms = now + cfg.probe_interval_ms;
    auto targets = random_members(kLeaveFanout, [](const Member& m) { return !is_gone(m.state); });
    for (Member* m : targets) {
      msg::Builder b(msg::Type::kGossip, self.name, self.incarnation, own_addr());
      (void)b.add_update(record_of(self));
      broadcasts.fill(b, transmit_limit(), self.name);
      send(m->addr, b);
    }
  }

  // ---- receive path ----

  void on_ping(const env::Endpoint& from, const msg::Message& m) {
    if (m.target != self.name) {
      // Meant for a node that used to live at this address.
      ++counters.dropped_foreign;
      return;
    }
    msg::Builder b(msg::Type::kAck, self.name, self.incarnation, own_addr());
    b.seq(m.seq);
    b.target(self.name);
    if (leaving) (void)b.add_update(record_of(self));
    piggyback(b);
    send(from, b);
  }

  void on_ping_req(const env::Endpoint& from, const msg::Message& m, env::TimeMs now) {
    if (m.target == self.name) {
      // The requester cannot reach us directly but the request reached us: answer it directly.
      msg::Builder b(msg::Type::kAck, self.name, self.incarnation, own_addr());
      b.seq(m.seq);
      b.target(self.name);
      piggyback(b);
      send(from, b);
      return;
    }
    Relay r{next_seq++, m.seq, from, m.target, now + cfg.probe_interval_ms};
    msg::Builder b(msg::Type::kPing, self.name, self.incarnation, own_addr());
    b.seq(r.our_seq);
    b.target(m.target);
    piggyback(b);
    send(m.target_addr, b);
    if (relays.size() >= kMaxRelays) relays.erase(relays.begin());
    relays.push_back(std::move(r));
  }

  void on_ack(const msg::Message& m) {
    const std::string& who = m.target.empty() ? m.sender : m.target;
    if (probe.active && m.seq == probe.seq && who == probe.target) {
      probe.active = false;
      return;
    }
    for (auto it = relays.begin(); it != relays.end(); ++it) {
      if (it->our_seq != m.seq || it->target != who) continue;
      msg::Builder b(msg::Type::kAck, self.name, self.incarnation, own_addr());
      b.seq(it->their_seq);
      b.target(it->target);
      piggyback(b);
      send(it->requester, b);
      relays.erase(it);
      return;
    }
    // A late ack (after the probe period) or a duplicate: nothing to do.
  }

  void on_sync(const env::Endpoint& from, const msg::Message& m, env::TimeMs now) {
    for (const auto& r : m.members) apply_sync_entry(r, now);
    if (!joined) log.info("joined through {} ({} members known)", m.sender, members.size());
    joined = true;
    if (m.flags & msg::kSyncReplyWanted) {
      bool join = (m.flags & msg::kSyncJoin) != 0;
      // Answer the address the sender signed, not the datagram's source: a replayed join request
      // with a forged source must not turn us into a 64x amplifier against a third party.
      send_sync(m.sender_addr ? *m.sender_addr : from, 0,
                join ? kMaxJoinSyncDatagrams : kMaxSyncDatagrams);
    }
  }

  void expire_relays(env::TimeMs now) {
    std::erase_if(relays, [now](const Relay& r) { return now >= r.expires_ms; });
  }

  void on_datagram(const env::Endpoint& from, std::span<const std::uint8_t> datagram) {
    ++counters.received;
    if (!valid || !started) {
      ++counters.dropped_foreign;
      return;
    }
    msg::Decoded d = msg::decode(key, datagram, mode());
    switch (d.status) {
      case msg::DecodeStatus::kOk:
        break;
      case msg::DecodeStatus::kBadMac:
        ++counters.dropped_bad_mac;
        break;
      case msg::DecodeStatus::kBadVersion:
        ++counters.dropped_bad_version;
        break;
      case msg::DecodeStatus::kMalformed:
        ++counters.dropped_malformed;
        break;
      case msg::DecodeStatus::kUnknownType:
        ++counters.dropped_foreign;
        break;
      case msg::DecodeStatus::kModeMismatch:
        ++counters.dropped_encryption_mismatch;
        break;
    }
    if (d.status != msg::DecodeStatus::kOk) {
      log.debug("dropped datagram from {} ({} bytes): {}", from.str(), datagram.size(), d.why);
      return;
    }
    const msg::Message& m = d.msg;
    if (m.sender == self.name) {
      ++counters.dropped_foreign;  // our own datagram (a seed that is us under another name)
      return;
    }
    // Authentic: now fresh? (A replayed load, ping or death changes nothing.)
    const env::TimeMs wall_now = wall_clock.now_ms();
    if (auto v = replay.admit(m.sender, d.sent_ms, d.nonce, wall_now); v != ReplayGuard::Verdict::kFresh) {
      ++counters.dropped_replay;
      if (v == ReplayGuard::Verdict::kOutsideWindow && now_for_skew_warning()) {
        // Most likely a clock out of sync (NTP), which cuts the node off: say so, once in a while.
        log.warn("dropping datagrams from {} ({}) sent {} ms from our clock, outside the {} ms replay "
                 "window: are the clocks synchronised?",
                 m.sender, from.str(), d.sent_ms - wall_now, kReplayWindowMs);
      } else {
        log.debug("dropped datagram from {} ({}): {} (sent {} ms from our clock)", from.str(), m.sender,
                  v == ReplayGuard::Verdict::kReplayed ? "replayed" : "outside the replay window",
                  d.sent_ms - wall_now);
      }
      return;
    }
    env::TimeMs now = clock.now_ms();
    if (leaving) {
      if (m.type == msg::Type::kPing) on_ping(from, m);
      return;
    }
    // Every message is the sender's own word that it is alive at its incarnation (and, if it says
    // so, at its address): it makes an unknown sender known and outbids older claims about it.
    if (Member* s = find(m.sender); s == nullptr || m.sender_incarnation > s->incarnation) {
      if (m.sender_addr) {
        on_alive({m.sender, *m.sender_addr, m.sender_incarnation, MemberState::kAlive}, now);
      } else if (s != nullptr) {
        on_alive({s->name, s->addr, m.sender_incarnation, MemberState::kAlive}, now);
      }
    }
    for (const auto& u : m.updates) apply_update(u, now);
    switch (m.type) {
      case msg::Type::kPing:
        on_ping(from, m);
        break;
      case msg::Type::kPingReq:
        on_ping_req(from, m, now);
        break;
      case msg::Type::kAck:
        on_ack(m);
        break;
      case msg::Type::kSync:
        on_sync(from, m, now);
        break;
      case msg::Type::kLoad:
        on_load_records(m.loads, now);
        break;
      case msg::Type::kGossip:
        break;
    }
  }

  // ---- public operations ----

  void start() {
    if (!valid || (started && !leaving)) return;
    env::TimeMs now = clock.now_ms();
    if (leaving) {
      // Coming back after a leave: the cluster recorded us as left at this incarnation.
      leaving = false;
      ++self.incarnation;
    }
    started = true;
    self.state = MemberState::kAlive;
    self.state_changed_ms = now;
    broadcasts.push(record_of(self));
    last_tick_ms = now;
    // Random phases, so that nodes started together do not probe and gossip in lockstep.
    next_probe_ms = now + static_cast<env::TimeMs>(random.uniform(cfg.probe_interval_ms));
    next_load_ms = now + static_cast<env::TimeMs>(random.uniform(cfg.load_interval_ms));
    next_sync_ms =
        now + cfg.sync_interval_ms + static_cast<env::TimeMs>(random.uniform(cfg.sync_interval_ms));
    if (seeds.empty()) {
      joined = true;
      log.info("starting a new cluster as {} at {} inc={}", self.name, self.addr.str(),
               self.incarnation);
    } else {
      joined = false;
      log.info("joining through {} seeds as {} at {} inc={}", seeds.size(), self.name,
               self.addr.str(), self.incarnation);
      send_join(now);
    }
  }

  void tick() {
    if (!valid || !started) return;
    env::TimeMs now = clock.now_ms();
    if (last_tick_ms >= 0 && now - last_tick_ms > cfg.probe_interval_ms)
      on_stall(now - last_tick_ms, now);
    last_tick_ms = now;
    if (leaving) {
      leave_tick(now);
      return;
    }
    if (!joined && now >= next_join_ms) send_join(now);
    probe_tick(now);
    expire_relays(now);
    check_suspects(now);
    forget_gone(now);
    if (now >= next_load_ms) {
      send_load(now);
      next_load_ms = now + cfg.load_interval_ms;
    }
    if (now >= next_sync_ms) {
      sync_tick(now);
      next_sync_ms = now + sync_interval();
    }
  }

  void leave() {
    if (!valid || !started || leaving) return;
    env::TimeMs now = clock.now_ms();
    leaving = true;
    self.state = MemberState::kLeft;
    self.state_changed_ms = now;
    probe.active = false;
    relays.clear();
    broadcasts.push(record_of(self));
    leave_rounds_left = kLeaveRounds;
    next_leave_ms = now;
    log.info("leaving the cluster at inc={}", self.incarnation);
    leave_tick(now);
  }

  std::vector<MemberView> views() const {
    env::TimeMs now = clock.now_ms();
    std::vector<MemberView> out;
    out.reserve(members.size() + 1);
    auto view_of = [now](const Member& m, bool is_self) {
      MemberView v;
      v.name = m.name;
      v.addr = m.addr;
      v.state = m.state;
      v.incarnation = m.incarnation;
      v.is_self = is_self;
      v.load = m.load;
      v.load_age_ms = m.load ? now - m.load_heard_ms : 0;
      v.state_age_ms = now - m.state_changed_ms;
      return v;
    };
    out.push_back(view_of(self, true));
    for (const auto& m : members) out.push_back(view_of(*m, false));
    std::sort(out.begin() + 1, out.end(),
              [](const MemberView& a, const MemberView& b) { return a.name < b.name; });
    return out;
  }
};

Node::Node(Config config, const env::Clock& clock, env::Transport& transport, env::Random& random,
           Logger log, const env::Clock* wall_clock, env::Random* nonces)
    : impl_(std::make_unique<Impl>(std::move(config), clock, transport, random, std::move(log), wall_clock,
                                   nonces)) {}

Node::~Node() = default;

void Node::start() {
  impl_->start();
}
void Node::tick() {
  impl_->tick();
}
void Node::on_datagram(const env::Endpoint& from, std::span<const std::uint8_t> datagram) {
  impl_->on_datagram(from, datagram);
}
void Node::set_local_load(const LoadInfo& load) {
  impl_->self.load = sanitized(load);
  impl_->self.load_heard_ms = impl_->clock.now_ms();
}
void Node::leave() {
  impl_->leave();
}
std::vector<MemberView> Node::members() const {
  return impl_->views();
}
const Counters& Node::counters() const {
  return impl_->counters;
}
const Config& Node::config() const {
  return impl_->cfg;
}

}  // namespace osmo::gossip
