// SPDX-License-Identifier: GPL-2.0-or-later
// Replay protection for gossip datagrams: a datagram is accepted only if its send time (the
// sender's wall clock, authenticated in the envelope) is within kReplayWindowMs of ours and its
// nonce has not been seen from that sender within the window. Clocks are assumed synchronised
// (NTP) to well within the window (docs/operations.md).
//
// Memory is bounded whatever arrives: at most kReplayCacheSenders senders with at most
// kReplayCachePerSender remembered nonces each. When a bound is hit, the oldest entries are
// forgotten and a *floor* rises to their send time: anything sent at or before the floor is
// refused, because it can no longer be proven fresh. Senders send in time order, so the floor
// only ever refuses datagrams that were delayed behind newer ones from the same sender (or, for
// the sender table, behind a forgotten sender's newest), never fresh traffic; no replay is ever
// accepted. Pure: time comes from the caller.
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "env/clock.hpp"
#include "wire/sealed_datagram.hpp"

namespace osmo::gossip {

class ReplayGuard {
 public:
  enum class Verdict : std::uint8_t { kFresh, kOutsideWindow, kReplayed };

  ReplayGuard(env::TimeMs window_ms, std::size_t max_senders, std::size_t max_per_sender)
      : window_ms_(window_ms), max_senders_(max_senders), max_per_sender_(max_per_sender) {}

  // Decides about one authentic datagram and, if fresh, remembers it.
  Verdict admit(std::string_view sender, env::TimeMs sent_ms, const wire::DatagramNonce& nonce,
                env::TimeMs now_ms);

  std::size_t senders() const { return senders_.size(); }
  std::size_t entries() const;

 private:
  struct Sender {
    std::set<std::pair<env::TimeMs, wire::DatagramNonce>> seen;  // by send time
    env::TimeMs floor_ms = INT64_MIN;  // refused at or below: forgotten entries lived there
    env::TimeMs newest_ms = INT64_MIN;
  };
  void make_room(env::TimeMs now_ms);

  env::TimeMs window_ms_;
  std::size_t max_senders_;
  std::size_t max_per_sender_;
  // The newest send time of any sender dropped from the table: a sender that comes back starts
  // with this floor, so its old datagrams cannot be replayed after it was forgotten.
  env::TimeMs forgotten_floor_ms_ = INT64_MIN;
  std::unordered_map<std::string, Sender> senders_;
};

}  // namespace osmo::gossip
