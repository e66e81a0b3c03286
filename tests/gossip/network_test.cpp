// SPDX-License-Identifier: GPL-2.0-or-later
// The virtual network itself: latency and ordering, loss and duplication rates, blocks and
// partitions, pause with a queue (SIGSTOP) or drop, crashes, repeatability.
#include "sim/network.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace osmo::sim {
namespace {

env::Endpoint ep(int i) {
  return {"10.1.0." + std::to_string(i), 7000};
}

struct Inbox {
  std::vector<std::pair<env::TimeMs, std::vector<std::uint8_t>>> got;
};

struct Fixture {
  env::ManualClock clock{0};
  Network net{clock, 123};
  Inbox in[3];
  env::Transport* t[3];
  Fixture() {
    for (int i = 0; i < 3; ++i)
      t[i] = &net.add_endpoint(
          ep(i), [this, i](const env::Endpoint&, std::span<const std::uint8_t> d) {
            in[i].got.emplace_back(clock.now_ms(), std::vector<std::uint8_t>(d.begin(), d.end()));
          });
  }
  void send(int from, int to, std::uint8_t byte) {
    std::vector<std::uint8_t> d = {byte};
    t[from]->send(ep(to), d);
  }
  void advance(env::TimeMs ms) {
    for (env::TimeMs k = 0; k < ms; ++k) {
      clock.advance_ms(1);
      net.deliver_due();
    }
  }
};

TEST(Network, DeliversAfterLatencyWithinJitter) {
  Fixture f;
  f.net.set_default_profile({5, 3, 0, 0});
  for (int k = 0; k < 100; ++k) f.send(0, 1, static_cast<std::uint8_t>(k));
  f.advance(4);
  EXPECT_TRUE(f.in[1].got.empty());
  f.advance(10);
  ASSERT_EQ(f.in[1].got.size(), 100u);
  bool reordered = false;
  for (std::size_t k = 0; k < 100; ++k) {
    EXPECT_GE(f.in[1].got[k].first, 5);
    EXPECT_LE(f.in[1].got[k].first, 8);
    reordered |= f.in[1].got[k].second[0] != k;
  }
  EXPECT_TRUE(reordered) << "jitter should reorder some datagrams";
}

TEST(Network, LossAndDuplicationRates) {
  Fixture f;
  f.net.set_default_profile({1, 0, 0.2, 0.1});
  for (int k = 0; k < 10'000; ++k) f.send(0, 1, 1);
  f.advance(2);
  double got = static_cast<double>(f.in[1].got.size());
  // Expected 10'000 * 0.8 * 1.1 = 8'800.
  EXPECT_NEAR(got, 8'800, 300);
  EXPECT_NEAR(static_cast<double>(f.net.stats().lost), 2'000, 200);
}

TEST(Network, BlocksAndPartitions) {
  Fixture f;
  f.net.block(ep(0), ep(1));
  f.send(0, 1, 1);
  f.send(1, 0, 1);
  f.send(0, 2, 1);
  f.advance(3);
  EXPECT_TRUE(f.in[1].got.empty());
  EXPECT_TRUE(f.in[0].got.empty());
  EXPECT_EQ(f.in[2].got.size(), 1u);
  f.net.heal();
  f.net.partition({{ep(0)}, {ep(1), ep(2)}});
  f.send(1, 2, 1);
  f.send(2, 0, 1);
  f.advance(3);
  EXPECT_EQ(f.in[2].got.size(), 2u);
  EXPECT_TRUE(f.in[0].got.empty());
  EXPECT_EQ(f.net.stats().blocked, 3u);
  f.net.heal();
  f.send(2, 0, 1);
  f.advance(3);
  EXPECT_EQ(f.in[0].got.size(), 1u);
}

TEST(Network, PauseQueuesLikeASocketBufferAndResumeDelivers) {
  Fixture f;
  f.net.pause(ep(1));
  f.send(0, 1, 7);
  f.send(1, 0, 8);  // a stopped process sends nothing
  f.advance(20);
  EXPECT_TRUE(f.in[1].got.empty());
  EXPECT_TRUE(f.in[0].got.empty());
  f.net.resume(ep(1));
  f.advance(1);
  ASSERT_EQ(f.in[1].got.size(), 1u);
  EXPECT_EQ(f.in[1].got[0].second[0], 7);

  // The buffer is bounded.
  f.net.pause(ep(1));
  std::vector<std::uint8_t> big(1'000, 1);
  for (int k = 0; k < 300; ++k) f.t[0]->send(ep(1), big);
  f.advance(3);
  f.net.resume(ep(1));
  f.advance(1);
  EXPECT_EQ(f.in[1].got.size(), 1u + Network::kPausedBufferBytes / 1'000);
  EXPECT_GT(f.net.stats().dropped_paused, 0u);

  f.net.pause(ep(2), PauseMode::kDrop);
  f.send(0, 2, 1);
  f.advance(3);
  f.net.resume(ep(2));
  f.advance(3);
  EXPECT_TRUE(f.in[2].got.empty());
}

TEST(Network, RemovedEndpointsAndOversizeDatagramsAreDropped) {
  Fixture f;
  f.send(0, 2, 1);
  f.net.remove_endpoint(ep(2));
  f.advance(3);
  EXPECT_EQ(f.net.stats().dropped_unknown, 1u);
  std::vector<std::uint8_t> huge(env::kMaxDatagramBytes + 1, 0);
  f.t[0]->send(ep(1), huge);
  EXPECT_EQ(f.net.stats().dropped_oversize, 1u);
  EXPECT_FALSE(f.net.next_due_ms().has_value());
}

TEST(Network, SameSeedSameRun) {
  auto run = [] {
    Fixture f;
    f.net.set_default_profile({1, 20, 0.3, 0.2});
    for (int k = 0; k < 500; ++k) f.send(k % 3, (k + 1) % 3, static_cast<std::uint8_t>(k));
    f.advance(30);
    std::vector<std::uint8_t> order;
    for (auto& [when, d] : f.in[1].got) order.push_back(d[0]);
    return order;
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace osmo::sim
