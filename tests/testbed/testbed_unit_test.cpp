// SPDX-License-Identifier: GPL-2.0-or-later
// Testbed naming, addressing, the daemon command line, and the state record (no root needed).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "testbed/layout.hpp"
#include "testbed/node_daemon.hpp"
#include "testbed/state.hpp"

namespace osmo::testbed {
namespace {

TEST(TestbedLayout, NamesAndAddresses) {
  EXPECT_EQ(node_name(3), "n3");
  EXPECT_EQ(*parse_node_name("n12"), 12);
  for (const char* bad : {"", "n", "n0", "x1", "n01", "n1a", "n201", "osmo-tb-n1"})
    EXPECT_FALSE(parse_node_name(bad).ok()) << bad;
  EXPECT_EQ(node_netns(2), "osmo-tb-n2");
  EXPECT_EQ(node_address(2, false), "10.77.0.2");
  EXPECT_EQ(node_address(2, true), "127.0.0.1");
  EXPECT_EQ(node_port(3, false, 7946), 7946);
  EXPECT_EQ(node_port(3, true, 7946), 7948);
  NodePaths p = node_paths("/run/osmo/testbed", "n2");
  EXPECT_EQ(p.socket, "/run/osmo/testbed/n2/osmod.sock");
  EXPECT_EQ(p.state_dir, "/run/osmo/testbed/n2/state");
  EXPECT_EQ(p.log, "/run/osmo/testbed/n2/osmod.log");
  EXPECT_EQ(p.pid_file, "/run/osmo/testbed/n2/osmod.pid");
}

TestbedState sample_state(int n) {
  TestbedState s;
  s.base_port = 7946;
  s.cpus_per_node = 0.5;
  s.cgroup_parent.cpu = "/sys/fs/cgroup/cpu/osmo-testbed";
  for (int k = 1; k <= n; ++k) {
    NodeRecord r;
    r.name = node_name(k);
    r.address = node_address(k, false);
    r.port = 7946;
    r.netns = node_netns(k);
    r.cgroup.cpu = s.cgroup_parent.cpu + "/" + r.name;
    r.cgroup.memory = "/sys/fs/cgroup/memory/x/osmo-testbed/" + r.name;
    s.nodes.push_back(r);
  }
  return s;
}

TEST(TestbedDaemon, CommandLineFollowsTheDaemonContract) {
  TestbedState s = sample_state(3);
  auto a = daemon_arguments("/run/osmo/testbed", s, s.nodes[1]);
  std::vector<std::string> want{"daemon",
                                "--name",
                                "n2",
                                "--listen",
                                "10.77.0.2:7946",
                                "--join",
                                "10.77.0.1:7946",
                                "--join",
                                "10.77.0.3:7946",
                                "--secret-file",
                                "/run/osmo/testbed/secret",
                                "--state-dir",
                                "/run/osmo/testbed/n2/state",
                                "--socket",
                                "/run/osmo/testbed/n2/osmod.sock",
                                "--load-scope",
                                "cgroup"};
  EXPECT_EQ(a, want);
}

TEST(TestbedDaemon, JoinSeedsAreBounded) {
  TestbedState s = sample_state(20);
  auto a = daemon_arguments("/r", s, s.nodes[0]);
  EXPECT_EQ(std::count(a.begin(), a.end(), "--join"), kMaxJoinSeeds);
  for (std::size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == "--join") {
      EXPECT_NE(a[i + 1], "10.77.0.1:7946");  // never itself
    }
  TestbedState one = sample_state(1);
  auto b = daemon_arguments("/r", one, one.nodes[0]);
  EXPECT_EQ(std::count(b.begin(), b.end(), "--join"), 0);
}

TEST(TestbedState, RoundTrip) {
  TestbedState s = sample_state(2);
  s.daemon_override = "/x/fake";
  auto back = decode_state(encode_state(s));
  ASSERT_TRUE(back.ok()) << back.error().str();
  EXPECT_EQ(back->loopback, false);
  EXPECT_EQ(back->base_port, 7946);
  ASSERT_TRUE(back->cpus_per_node.has_value());
  EXPECT_DOUBLE_EQ(*back->cpus_per_node, 0.5);
  EXPECT_EQ(back->daemon_override, "/x/fake");
  EXPECT_EQ(back->cgroup_parent.cpu, s.cgroup_parent.cpu);
  ASSERT_EQ(back->nodes.size(), 2u);
  EXPECT_EQ(back->nodes[1].name, "n2");
  EXPECT_EQ(back->nodes[1].address, "10.77.0.2");
  EXPECT_EQ(back->nodes[1].netns, "osmo-tb-n2");
  EXPECT_EQ(back->nodes[1].cgroup.memory, s.nodes[1].cgroup.memory);
  EXPECT_TRUE(back->nodes[1].cgroup.cpuset.empty());
  ASSERT_NE(back->find("n2"), nullptr);
  EXPECT_EQ(back->find("n3"), nullptr);

  s.loopback = true;
  s.cpus_per_node.reset();
  auto lb = decode_state(encode_state(s));
  ASSERT_TRUE(lb.ok());
  EXPECT_TRUE(lb->loopback);
  EXPECT_FALSE(lb->cpus_per_node.has_value());
}

TEST(TestbedState, DamagedRecordsAreErrors) {
  EXPECT_FALSE(decode_state("").ok());
  EXPECT_FALSE(decode_state("{\"version\": 99}").ok());
  EXPECT_FALSE(decode_state("{\"version\": 1, \"mode\": \"x\", \"base_port\": 1, "
                            "\"cpus_per_node\": null, \"nodes\": []}")
                   .ok());
  auto missing = decode_state("{\"version\": 1, \"mode\": \"netns\"}");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("testbed state"), std::string::npos);
}

TEST(TestbedDaemon, LogTail) {
  auto path =
      std::filesystem::temp_directory_path() / ("osmo-logtail-" + std::to_string(::getpid()));
  {
    std::ofstream f(path);
    for (int i = 1; i <= 30; ++i) f << "line " << i << "\n";
  }
  std::string tail = log_tail(path.string(), 3);
  std::filesystem::remove(path);
  EXPECT_EQ(tail, "line 28\nline 29\nline 30");
  EXPECT_EQ(log_tail("/nonexistent/log", 3), "");
}

}  // namespace
}  // namespace osmo::testbed
