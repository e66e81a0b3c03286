// SPDX-License-Identifier: GPL-2.0-or-later
// The agenda's ordering is what makes a simulation repeatable: time first, then scheduling order.
#include "sim/event_queue.hpp"

#include <gtest/gtest.h>

namespace osmo::sim {
namespace {

TEST(EventQueue, OrdersByTimeThenByInsertion) {
  EventQueue q;
  q.push(30, EventKind::kCallback, 0, 1);
  q.push(10, EventKind::kCallback, 0, 2);
  q.push(30, EventKind::kCallback, 0, 3);
  q.push(10, EventKind::kCallback, 0, 4);
  q.push(20, EventKind::kCallback, 0, 5);
  ASSERT_EQ(q.next_ms(), 10);
  std::vector<std::uint64_t> order;
  while (!q.empty()) order.push_back(q.pop().arg);
  EXPECT_EQ(order, (std::vector<std::uint64_t>{2, 4, 5, 1, 3}));
  EXPECT_FALSE(q.next_ms().has_value());
}

}  // namespace
}  // namespace osmo::sim
