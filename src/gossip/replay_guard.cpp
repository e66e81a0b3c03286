// SPDX-License-Identifier: GPL-2.0-or-later
// Replay protection for gossip datagrams (see replay_guard.hpp).
#include "gossip/replay_guard.hpp"

#include <algorithm>

namespace osmo::gossip {

std::size_t ReplayGuard::entries() const {
  std::size_t n = 0;
  for (const auto& [name, s] : senders_) n += s.seen.size();
  return n;
}

void ReplayGuard::make_room(env::TimeMs now_ms) {
  // Senders whose every datagram is outside the window need no memory: the window check alone
  // refuses their replays. Only if none is, forget the one heard from longest ago.
  const env::TimeMs oldest_useful = now_ms - window_ms_;
  std::erase_if(senders_, [&](const auto& kv) { return kv.second.newest_ms < oldest_useful; });
  if (senders_.size() < max_senders_) return;
  auto victim = std::min_element(
      senders_.begin(), senders_.end(),
      [](const auto& a, const auto& b) { return a.second.newest_ms < b.second.newest_ms; });
  forgotten_floor_ms_ = std::max(forgotten_floor_ms_, victim->second.newest_ms);
  senders_.erase(victim);
}

ReplayGuard::Verdict ReplayGuard::admit(std::string_view sender, env::TimeMs sent_ms,
                                        const wire::DatagramNonce& nonce, env::TimeMs now_ms) {
  if (sent_ms < now_ms - window_ms_ || sent_ms > now_ms + window_ms_)
    return Verdict::kOutsideWindow;
  auto it = senders_.find(std::string(sender));
  if (it == senders_.end()) {
    if (senders_.size() >= max_senders_) make_room(now_ms);
    it = senders_.emplace(std::string(sender), Sender{}).first;
    it->second.floor_ms = forgotten_floor_ms_;
  }
  Sender& s = it->second;
  if (sent_ms <= s.floor_ms) return Verdict::kReplayed;
  const std::pair<env::TimeMs, wire::DatagramNonce> key{sent_ms, nonce};
  if (s.seen.contains(key)) return Verdict::kReplayed;
  // Entries that left the window are refused by the window check from now on.
  while (!s.seen.empty() && s.seen.begin()->first < now_ms - window_ms_)
    s.seen.erase(s.seen.begin());
  s.seen.insert(key);
  s.newest_ms = std::max(s.newest_ms, sent_ms);
  while (s.seen.size() > max_per_sender_) {
    s.floor_ms = std::max(s.floor_ms, s.seen.begin()->first);
    s.seen.erase(s.seen.begin());
  }
  return Verdict::kFresh;
}

}  // namespace osmo::gossip
