// SPDX-License-Identifier: GPL-2.0-or-later
// The target's page store of pre-copy (src/migrate/precopy.hpp): page chunks as the source
// writes them go in, the newest copy of a page wins, zero pages are zero, the runs are what the
// restore asks for, and malformed chunks are refused before anything of them is stored.
#include "migrate/precopy.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace osmo::migrate {
namespace {

constexpr std::uint64_t kPage = 4096;

// A chunk: pid, the pages at addr, each either a fill byte (data) or zero (flag 1).
std::vector<std::uint8_t> chunk(std::uint32_t pid, std::uint64_t addr, const std::vector<int>& fills) {
  std::vector<std::uint8_t> c(16);
  std::memcpy(c.data(), &pid, 4);
  auto n = static_cast<std::uint32_t>(fills.size());
  std::memcpy(c.data() + 4, &n, 4);
  std::memcpy(c.data() + 8, &addr, 8);
  for (int f : fills) c.push_back(f < 0 ? 1 : 0);
  for (int f : fills)
    if (f >= 0) c.insert(c.end(), kPage, static_cast<std::uint8_t>(f));
  return c;
}

bool page_is(const PageStoreMemory& s, std::int32_t pid, std::uint64_t addr, std::uint8_t v) {
  const std::uint8_t* p = s.page(pid, addr);
  if (p == nullptr) return false;
  for (std::uint64_t i = 0; i < kPage; i++)
    if (p[i] != v) return false;
  return true;
}

TEST(PrecopyStore, TakesChunksNewestWins) {
  PageStoreMemory s;
  ASSERT_TRUE(s.take_chunk(chunk(7, 0x10000, {1, -1, 3})).ok());
  ASSERT_TRUE(s.take_chunk(chunk(7, 0x20000, {9})).ok());
  ASSERT_TRUE(s.take_chunk(chunk(8, 0x10000, {5})).ok());
  EXPECT_EQ(s.pages(), 5u);
  EXPECT_TRUE(page_is(s, 7, 0x10000, 1));
  EXPECT_TRUE(page_is(s, 7, 0x11000, 0));
  EXPECT_TRUE(page_is(s, 7, 0x12000, 3));
  EXPECT_TRUE(page_is(s, 8, 0x10000, 5));
  EXPECT_EQ(s.page(7, 0x13000), nullptr);
  EXPECT_EQ(s.page(9, 0x10000), nullptr);
  auto runs = s.runs(7);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].vaddr, 0x10000u);
  EXPECT_EQ(runs[0].pages, 3u);
  EXPECT_EQ(runs[1].vaddr, 0x20000u);
  EXPECT_EQ(runs[1].pages, 1u);
  // A later round: page 0x11000 written (zero before), page 0x10000 cleared.
  ASSERT_TRUE(s.take_chunk(chunk(7, 0x10000, {-1, 4})).ok());
  EXPECT_EQ(s.pages(), 5u) << "a page sent again reuses its slot";
  EXPECT_TRUE(page_is(s, 7, 0x10000, 0));
  EXPECT_TRUE(page_is(s, 7, 0x11000, 4));
  s.clear();
  EXPECT_EQ(s.pages(), 0u);
  EXPECT_TRUE(s.runs(7).empty());
}

TEST(PrecopyStore, RefusesMalformedChunks) {
  PageStoreMemory s;
  EXPECT_FALSE(s.take_chunk(std::vector<std::uint8_t>(15)).ok()) << "shorter than its header";
  EXPECT_FALSE(s.take_chunk(chunk(7, 0x10000, {})).ok()) << "no pages";
  EXPECT_FALSE(s.take_chunk(chunk(7, 0x10001, {1})).ok()) << "not page-aligned";
  EXPECT_FALSE(s.take_chunk(chunk(7, 0x10000, std::vector<int>(kPrecopyChunkPages + 1, -1))).ok()) << "too many pages";
  auto c = chunk(7, 0x10000, {1, 2});
  c.pop_back();
  EXPECT_FALSE(s.take_chunk(c).ok()) << "data shorter than its flags say";
  c = chunk(7, 0x10000, {1, -1});
  c.push_back(0);
  EXPECT_FALSE(s.take_chunk(c).ok()) << "data longer than its flags say";
  EXPECT_EQ(s.pages(), 0u) << "nothing of a refused chunk is stored";
}

}  // namespace
}  // namespace osmo::migrate
