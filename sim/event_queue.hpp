// SPDX-License-Identifier: GPL-2.0-or-later
// The simulator's agenda: events ordered by virtual time, ties broken by insertion order, so a
// run is a pure function of its seed. Events are small tagged records rather than closures: a
// thousand-node run schedules millions of them (one gossip tick per node every few tens of ms).
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

#include "env/clock.hpp"

namespace osmo::sim {

enum class EventKind : std::uint8_t {
  kNodeTick,     // node.tick() for node `node`
  kLoadSample,   // every node feeds its runnable count to its LoadEstimator and gossips it
  kJobArrival,   // the next job of the workload is submitted
  kJobFinish,    // job `arg` ends
  kMeasure,      // the workload measures the spread of load
  kBalance,      // every node runs the balancer once
  kCallback,     // scenario step `arg` (index into the owner's table)
  kNodeFinish,   // processor sharing: node `node`'s next job end, if `arg` is still its epoch
  kArrive,       // processor sharing: job `arg`'s copy is over, it lands on its target
};

struct Event {
  env::TimeMs at_ms = 0;
  std::uint64_t seq = 0;
  EventKind kind = EventKind::kCallback;
  std::uint32_t node = 0;
  std::uint64_t arg = 0;
  std::uint64_t generation = 0;  // node incarnation the event belongs to (stale after a restart)
};

class EventQueue {
 public:
  void push(env::TimeMs at_ms, EventKind kind, std::uint32_t node = 0, std::uint64_t arg = 0,
            std::uint64_t generation = 0) {
    heap_.push(Event{at_ms, next_seq_++, kind, node, arg, generation});
  }
  bool empty() const { return heap_.empty(); }
  std::optional<env::TimeMs> next_ms() const {
    if (heap_.empty()) return std::nullopt;
    return heap_.top().at_ms;
  }
  Event pop() {
    Event e = heap_.top();
    heap_.pop();
    return e;
  }
  std::size_t size() const { return heap_.size(); }

 private:
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      if (a.at_ms != b.at_ms) return a.at_ms > b.at_ms;
      return a.seq > b.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace osmo::sim
