// SPDX-License-Identifier: GPL-2.0-or-later
// Pre-copy's round decision and auto's method choice (src/migrate/precopy_plan.hpp): pure
// functions, driven here with made-up histories of rounds and measured rates.
#include "migrate/precopy_plan.hpp"

#include <gtest/gtest.h>

namespace osmo::migrate {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kPagesPerGiB = 262144;

TEST(PrecopyRounds, FirstRoundAlwaysRuns) {
  EXPECT_TRUE(next_round({}, {}, kPagesPerGiB).another);
  EXPECT_TRUE(next_round({}, {}, 0).another);
}

TEST(PrecopyRounds, ConvergedWhenTheDirtySetMovesWithinTheTarget) {
  PrecopyBudget b;  // 5 ms at the best rate seen
  // 1 GiB in 1000 ms: 262 pages per ms, so up to 1310 pages move in 5 ms.
  std::vector<RoundRecord> done{{kPagesPerGiB, 1000}};
  auto v = next_round(b, done, 1310);
  EXPECT_FALSE(v.another);
  EXPECT_NE(v.reason.find("converged"), std::string::npos) << v.reason;
  EXPECT_TRUE(next_round(b, done, 1400).another);
  // A small set converges even when no rate is known yet.
  EXPECT_FALSE(next_round(b, {{10, 0}}, 64).another);
  EXPECT_TRUE(next_round(b, {{1000, 0}}, 65).another);
}

TEST(PrecopyRounds, StopsWhenTheDirtySetStopsShrinking) {
  PrecopyBudget b;
  std::vector<RoundRecord> done{{kPagesPerGiB, 1000}, {20000, 80}};
  EXPECT_TRUE(next_round(b, done, 17999).another);  // shrinking by more than 10 %
  auto v = next_round(b, done, 18000);
  EXPECT_FALSE(v.another);
  EXPECT_NE(v.reason.find("not shrinking"), std::string::npos) << v.reason;
  // After the first (full) round only: the second round is always worth it.
  EXPECT_TRUE(next_round(b, {{kPagesPerGiB, 1000}}, kPagesPerGiB / 2).another);
}

TEST(PrecopyRounds, RoundBudget) {
  PrecopyBudget b;
  b.max_rounds = 3;
  std::vector<RoundRecord> done{{kPagesPerGiB, 1000}, {50000, 200}, {30000, 120}};
  EXPECT_TRUE(next_round(b, done, 20000).another);
  done.push_back({20000, 80});
  auto v = next_round(b, done, 12000);
  EXPECT_FALSE(v.another);
  EXPECT_NE(v.reason.find("round budget"), std::string::npos) << v.reason;
}

TEST(PrecopyRounds, ByteBudget) {
  PrecopyBudget b;
  b.max_bytes_factor = 1.5;
  b.shrink_factor = 1.0;  // only the byte budget may stop it here
  std::vector<RoundRecord> done{{1000000, 4000}, {400000, 1600}};
  EXPECT_TRUE(next_round(b, done, 100000).another);  // 1.5 M exactly
  auto v = next_round(b, done, 100001);
  EXPECT_FALSE(v.another);
  EXPECT_NE(v.reason.find("byte budget"), std::string::npos) << v.reason;
}

TEST(PrecopyRounds, ARealisticRunEnds) {
  // A job dirtying a constant 2000 pages per round of ~40 ms over a ~1 GiB/s link: the second
  // round shrinks, then it stops shrinking and the freeze carries ~2000 pages.
  PrecopyBudget b;
  std::vector<RoundRecord> done;
  std::uint64_t dirty = kPagesPerGiB;
  int rounds = 0;
  for (; rounds < 50; rounds++) {
    auto v = next_round(b, done, dirty);
    if (!v.another) break;
    done.push_back({dirty, dirty / 262.0});
    dirty = done.size() == 1 ? 40000 : 2000 + 5;
  }
  EXPECT_LE(rounds, 3);
}

TEST(AutoMethod, SmallJobsStop) {
  auto c = choose_method({8 * kMiB, 0, 1});
  EXPECT_EQ(c.method, "stop");
  EXPECT_NE(c.reason.find("small"), std::string::npos) << c.reason;
  EXPECT_EQ(choose_method({8 * kMiB, 1e9, 1}).method, "stop");  // even when it writes fast
}

TEST(AutoMethod, LargeAndSlowPrecopy) {
  auto c = choose_method({1024 * kMiB, 10.0 * kMiB, 1});
  EXPECT_EQ(c.method, "precopy");
  EXPECT_NE(c.reason.find("pre-copy"), std::string::npos) << c.reason;
  EXPECT_EQ(choose_method({64 * kMiB, 0, 3}).method, "precopy");  // trees too
}

TEST(AutoMethod, TooFastPostcopyOnlyForOneProcess) {
  AutoPolicy p;
  const double fast = p.converge_fraction * p.assumed_link_bytes_per_s;
  auto c = choose_method({1024 * kMiB, fast, 1}, p);
  EXPECT_EQ(c.method, "postcopy");
  EXPECT_NE(c.reason.find("too fast"), std::string::npos) << c.reason;
  auto t = choose_method({1024 * kMiB, fast, 3}, p);
  EXPECT_EQ(t.method, "stop");
  EXPECT_NE(t.reason.find("single processes"), std::string::npos) << t.reason;
  EXPECT_EQ(choose_method({1024 * kMiB, fast * 0.99, 1}, p).method, "precopy");
}

}  // namespace
}  // namespace osmo::migrate
