// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo mon`'s model and layout without a terminal: what each view shows at 80x24 and elsewhere,
// paging for hundreds of nodes, and the events found between two looks.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "mon/model.hpp"
#include "mon/screen.hpp"

namespace osmo::mon {
namespace {

nlohmann::json node(const std::string& name, const std::string& state, double load, bool self = false) {
  return {{"name", name}, {"state", state}, {"self", self}, {"load", load}, {"cpus", 2.0}, {"speed", 1.0},
          {"mem_free_mb", 1000}, {"mem_total_mb", 4000}, {"jobs", 1}};
}

nlohmann::json job(const std::string& id, const std::string& node_name, int migrations, double cpu = 1.0) {
  return {{"id", id}, {"owner", "alice"}, {"home", "n1"}, {"node", node_name}, {"state", "running"},
          {"cmd", "/usr/bin/xz -9 big.tar"}, {"pid", 42}, {"cpu_s", cpu}, {"rss_mb", 12.5},
          {"migrations", migrations}, {"started_unix_ms", 1000}};
}

std::vector<std::string> texts(const Frame& f) {
  std::vector<std::string> out;
  for (const auto& l : f.lines) out.push_back(text_of(l));
  return out;
}

TEST(MonModel, NodesParsedSortedAndDrainingShown) {
  auto rows = nodes_from_json(nlohmann::json::array(
      {node("n2", "alive", 0.5), node("n1", "alive", 1.0, true),
       {{"name", "n3"}, {"state", "alive"}, {"draining", true}, {"load", nullptr}}}));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].name, "n1");
  EXPECT_TRUE(rows[0].self);
  EXPECT_EQ(rows[2].state, "draining");
  EXPECT_FALSE(rows[2].load.has_value());
}

TEST(MonModel, DiffFindsPlacementsMigrationsEndsAndStateChanges) {
  Snapshot a, b;
  a.nodes = nodes_from_json(nlohmann::json::array({node("n1", "alive", 1), node("n2", "alive", 1)}));
  b.nodes = nodes_from_json(nlohmann::json::array({node("n1", "alive", 1), node("n2", "suspect", 1),
                                                    node("n3", "alive", 0)}));
  a.jobs = jobs_from_json({{"jobs", {job("aaa", "n1", 0), job("bbb", "n1", 0)}}});
  b.jobs = jobs_from_json({{"jobs", {job("aaa", "n2", 1), job("ccc", "n3", 0)}}});
  a.have_jobs = b.have_jobs = true;
  auto ev = diff(a, b, 5);
  std::vector<std::string> t;
  for (auto& e : ev) t.push_back(e.text);
  EXPECT_EQ(t, (std::vector<std::string>{"node n2 alive -> suspect", "node n3 joined (alive)",
                                         "migrated aaa (xz) n1 -> n2", "placed ccc (xz) on n3, home n1",
                                         "ended bbb (xz) on n1"}));
  // Without jobs in one of the looks, only node changes are reported (a failed jobs.list is no
  // reason to claim every job ended).
  b.have_jobs = false;
  EXPECT_EQ(diff(a, b, 5).size(), 2u);
  // The first look reports no joins.
  EXPECT_TRUE(diff(Snapshot{}, a, 5).empty());
}

TEST(MonModel, EventLogKeepsTheNewest) {
  EventLog log(3);
  for (int i = 0; i < 5; ++i) log.add({Event{i, fmt::format("e{}", i)}});
  ASSERT_EQ(log.events().size(), 3u);
  EXPECT_EQ(log.events().front().text, "e2");
  EXPECT_EQ(log.events().back().text, "e4");
}

TEST(MonModel, JobsSortByEachKey) {
  auto jobs = jobs_from_json({{"jobs", {job("a", "n2", 0, 1.0), job("b", "n1", 3, 9.0), job("c", "n3", 1, 5.0)}}});
  sort_jobs(jobs, JobSort::kCpu, false);
  EXPECT_EQ(jobs[0].id, "b");
  sort_jobs(jobs, JobSort::kNode, false);
  EXPECT_EQ(jobs[0].node, "n1");
  sort_jobs(jobs, JobSort::kMigrations, true);
  EXPECT_EQ(jobs[0].id, "a");
  JobSort s = JobSort::kCpu;
  for (int i = 0; i < 6; ++i) s = next(s);
  EXPECT_EQ(s, JobSort::kCpu);  // the cycle visits every key once
}

TEST(MonScreen, NodesViewFits80x24) {
  Snapshot snap;
  snap.nodes = nodes_from_json(nlohmann::json::array(
      {node("n1", "alive", 2.0, true), node("n2", "alive", 1.0), node("n3", "dead", 0.0)}));
  EventLog log(10);
  log.add({Event{0, "node n3 suspect -> dead"}});
  ScreenState st;
  Frame f = render(snap, log, st, 80, 24);
  auto t = texts(f);
  ASSERT_EQ(t.size(), 24u);
  for (const auto& l : t) EXPECT_LE(l.size(), 80u) << l;
  EXPECT_NE(t[0].find("3 nodes: 2 alive, 1 dead"), std::string::npos) << t[0];
  EXPECT_NE(t[2].find("n1*"), std::string::npos);
  // Bars share the busiest node's scale: n1 (2.0) full, n2 (1.0) half.
  EXPECT_NE(t[2].find("[################]  2.00"), std::string::npos) << t[2];
  EXPECT_NE(t[3].find("[########........]  1.00"), std::string::npos) << t[3];
  EXPECT_NE(t[3].find("[########..]  75%"), std::string::npos) << t[3];  // 3000 of 4000 MB used
  // A dead node shows no load or memory.
  EXPECT_NE(t[4].find("dead"), std::string::npos);
  EXPECT_EQ(t[4].find("#"), std::string::npos) << t[4];
  EXPECT_EQ(f.lines[4][1].tone, Tone::kDead);
  EXPECT_NE(t[17].find("recent events"), std::string::npos) << t[17];  // 16 body rows, then the log
  EXPECT_NE(t[18].find("node n3 suspect -> dead"), std::string::npos) << t[18];
  EXPECT_NE(t[23].find("q quit"), std::string::npos);
}

TEST(MonScreen, HundredsOfNodesPageAndFitTheGrid) {
  nlohmann::json arr = nlohmann::json::array();
  for (int i = 0; i < 300; ++i) arr.push_back(node(fmt::format("node{:03}", i), i % 50 == 7 ? "dead" : "alive", 0.5));
  Snapshot snap;
  snap.nodes = nodes_from_json(arr);
  EventLog log(10);
  ScreenState st;
  Frame f = render(snap, log, st, 80, 24);
  EXPECT_EQ(f.pages, 300 / 15);  // 24 - title - keys - 6 log rows - header = 15 nodes a page
  EXPECT_NE(text_of(f.lines.back()).find("page 1/20"), std::string::npos);
  st.page = 99;  // past the end: clamped to the last page
  f = render(snap, log, st, 80, 24);
  EXPECT_EQ(f.page, 19);
  EXPECT_NE(text_of(f.lines[2]).find("node285"), std::string::npos);
  st.view = View::kGrid;
  st.page = 0;
  f = render(snap, log, st, 80, 24);
  EXPECT_EQ(f.pages, 4);  // 5 cells a row, 16 rows a page: 80 nodes a page
  EXPECT_NE(text_of(f.lines[1]).find("node000  0.50 node001  0.50"), std::string::npos) << text_of(f.lines[1]);
  // A large terminal shows the whole cluster on one grid page.
  f = render(snap, log, st, 200, 60);
  EXPECT_EQ(f.pages, 1);
}

TEST(MonScreen, JobsViewAndTinyTerminals) {
  Snapshot snap;
  snap.jobs = jobs_from_json({{"jobs", {job("a1", "n2", 2, 3.0), job("b2", "n1", 0, 8.0)}}});
  snap.have_jobs = true;
  EventLog log(10);
  ScreenState st;
  st.view = View::kJobs;
  auto t = texts(render(snap, log, st, 80, 24));
  EXPECT_NE(t[1].find("ID"), std::string::npos);
  EXPECT_EQ(t[2].rfind("b2", 0), 0u) << t[2];  // most CPU first
  EXPECT_NE(t[23].find("s sort:cpu"), std::string::npos);
  // Any size renders without overflowing; the log goes first when space is short.
  for (int w : {1, 10, 40}) {
    for (int h : {1, 3, 11}) {
      auto small = texts(render(snap, log, st, w, h));
      EXPECT_LE(small.size(), static_cast<std::size_t>(h));
      for (const auto& l : small) EXPECT_LE(l.size(), static_cast<std::size_t>(w));
    }
  }
}

}  // namespace
}  // namespace osmo::mon
