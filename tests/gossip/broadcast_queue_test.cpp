// SPDX-License-Identifier: GPL-2.0-or-later
#include "gossip/broadcast_queue.hpp"

#include <gtest/gtest.h>

#include "wire/mac.hpp"

namespace osmo::gossip {
namespace {

msg::MemberRecord rec(const std::string& name, std::uint64_t inc,
                      MemberState s = MemberState::kAlive) {
  return {name, {"10.1.1.1", 7946}, inc, s};
}

std::vector<msg::MemberRecord> drain_one(BroadcastQueue& q, int limit) {
  msg::Builder b(msg::Type::kGossip, "me", 1);
  q.fill(b, limit);
  wire::Key k{};
  auto d = msg::decode(k, b.seal(k));
  EXPECT_EQ(d.status, msg::DecodeStatus::kOk);
  return d.msg.updates;
}

TEST(BroadcastQueue, EachRumourIsSentExactlyLimitTimes) {
  BroadcastQueue q;
  q.push(rec("a", 1));
  q.push(rec("b", 1));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(drain_one(q, 3).size(), 2u);
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(drain_one(q, 3).empty());
}

TEST(BroadcastQueue, NewerRumourReplacesOlderAboutTheSameNode) {
  BroadcastQueue q;
  q.push(rec("a", 1));
  q.push(rec("a", 2, MemberState::kSuspect));
  auto u = drain_one(q, 5);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].incarnation, 2u);
  EXPECT_EQ(u[0].state, MemberState::kSuspect);
}

TEST(BroadcastQueue, FewestTransmitsFirstAndBoundedByTheDatagram) {
  BroadcastQueue q;
  for (int i = 0; i < 200; ++i) q.push(rec("node-with-a-long-name-" + std::to_string(i), 1));
  auto first = drain_one(q, 2);
  EXPECT_GT(first.size(), 10u);
  EXPECT_LE(first.size(), kMaxRecordsPerMessage);
  // The next message carries rumours not sent yet before repeating any.
  auto second = drain_one(q, 2);
  for (auto& a : second)
    for (auto& b : first) EXPECT_NE(a.name, b.name);
}

TEST(BroadcastQueue, BoundedSize) {
  BroadcastQueue q(10);
  for (int i = 0; i < 50; ++i) q.push(rec("n" + std::to_string(i), 1));
  EXPECT_EQ(q.size(), 10u);
}

}  // namespace
}  // namespace osmo::gossip
