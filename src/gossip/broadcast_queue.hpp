// SPDX-License-Identifier: GPL-2.0-or-later
// Piggybacked membership rumours with bounded retransmission (SWIM's infection-style
// dissemination). Every accepted change of membership (alive, suspect, dead, left) is queued and
// then carried by the next outgoing probes, acks and load messages until it has been sent
// `limit` times (retransmit_mult * ceil(log10(n + 1))). Rumours sent fewest times go first and,
// among those, the newest; a newer rumour about a node replaces the older one outright, since
// it supersedes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "gossip/messages.hpp"

namespace osmo::gossip {

class BroadcastQueue {
 public:
  explicit BroadcastQueue(std::size_t max_items = kMaxBroadcastQueue) : max_items_(max_items) {}

  void push(const msg::MemberRecord& rec);
  // Adds to `b` as many queued rumours as fit, skipping `skip_name` (a rumour the caller
  // already added itself); each one added counts as one transmission and is dropped once it
  // reached `limit`. Returns how many were added.
  std::size_t fill(msg::Builder& b, int limit, const std::string& skip_name = {});
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  void clear();

 private:
  struct Item {
    msg::MemberRecord rec;
    int transmits = 0;
  };
  // Ordering key: fewest transmits first, then newest (highest id) first.
  using Key = std::pair<int, std::uint64_t>;  // (transmits, ~id)
  static Key key_of(int transmits, std::uint64_t id) { return {transmits, ~id}; }

  void erase(std::uint64_t id);

  std::size_t max_items_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Item> items_;              // by id
  std::map<std::string, std::uint64_t> id_by_name_;  // one rumour per node
  std::set<Key> order_;
};

}  // namespace osmo::gossip
