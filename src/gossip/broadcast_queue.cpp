// SPDX-License-Identifier: GPL-2.0-or-later
#include "gossip/broadcast_queue.hpp"

#include <vector>

namespace osmo::gossip {

void BroadcastQueue::erase(std::uint64_t id) {
  auto it = items_.find(id);
  if (it == items_.end()) return;
  order_.erase(key_of(it->second.transmits, id));
  id_by_name_.erase(it->second.rec.name);
  items_.erase(it);
}

void BroadcastQueue::clear() {
  items_.clear();
  id_by_name_.clear();
  order_.clear();
}

void BroadcastQueue::push(const msg::MemberRecord& rec) {
  if (auto it = id_by_name_.find(rec.name); it != id_by_name_.end()) erase(it->second);
  // Full: drop the rumour that has been retransmitted most (the last in order), as it has had
  // the most chances to spread already.
  while (items_.size() >= max_items_ && !order_.empty()) erase(~std::prev(order_.end())->second);
  std::uint64_t id = next_id_++;
  items_.emplace(id, Item{rec, 0});
  id_by_name_.emplace(rec.name, id);
  order_.insert(key_of(0, id));
}

std::size_t BroadcastQueue::fill(msg::Builder& b, int limit, const std::string& skip_name) {
  std::vector<std::uint64_t> sent;
  // Rumours have similar sizes: after a few that do not fit, the rest will not either, and
  // scanning a long queue for each message would cost O(queue) per datagram.
  constexpr int kMaxMisses = 4;
  int misses = 0;
  for (const auto& k : order_) {
    std::uint64_t id = ~k.second;
    const Item& item = items_.at(id);
    if (!skip_name.empty() && item.rec.name == skip_name) continue;
    if (b.records() >= kMaxRecordsPerMessage) break;
    if (b.add_update(item.rec)) {
      sent.push_back(id);
    } else if (++misses >= kMaxMisses) {
      break;
    }
  }
  for (std::uint64_t id : sent) {
    Item& item = items_.at(id);
    order_.erase(key_of(item.transmits, id));
    ++item.transmits;
    if (item.transmits >= limit) {
      id_by_name_.erase(item.rec.name);
      items_.erase(id);
    } else {
      order_.insert(key_of(item.transmits, id));
    }
  }
  return sent.size();
}

}  // namespace osmo::gossip
