// SPDX-License-Identifier: GPL-2.0-or-later
// The testbed end to end through the `osmo` binary, with fake_osmod standing in for the daemon
// (OSMO_TESTBED_DAEMON): namespaces, bridge connectivity, cgroup quota, exec, node controls,
// failure handling, and that `down` leaves nothing behind. Root only; these tests own the
// machine's testbed slot (/run/osmo/testbed, osmo-tb-* namespaces) while they run, so ctest runs
// them under the "testbed" resource lock.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <regex>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <thread>

#include "../platform/require_root.hpp"
#include "platform/linux/cgroup.hpp"
#include "platform/linux/command.hpp"
#include "platform/linux/netns.hpp"
#include "platform/linux/process.hpp"
#include "platform/linux/sysfs_io.hpp"
#include "testbed/layout.hpp"
#include "testbed/state.hpp"

namespace osmo::testbed {
namespace {

using namespace std::chrono_literals;
using platform::CommandResult;

const std::string kRoot = "/run/osmo/testbed";
// A second instance beside the default one (TwoInstancesSideBySide).
constexpr const char* kSecondInstance = "mech2";

CommandResult osmo(std::vector<std::string> args) {
  args.insert(args.begin(), OSMO_BIN);
  auto r = platform::run_command(args);
  if (!r.ok()) return CommandResult{-1, r.error().str()};
  return *r;
}
CommandResult tb(std::vector<std::string> args) {
  args.insert(args.begin(), "testbed");
  return osmo(std::move(args));
}
CommandResult sh(const std::string& script) {
  auto r = platform::run_command({"sh", "-c", script});
  if (!r.ok()) return CommandResult{-1, r.error().str()};
  return *r;
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

nlohmann::json list_json() {
  auto r = tb({"list", "--json"});
  EXPECT_EQ(r.exit_status, 0) << r.out;
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "list --json: " << e.what() << ": " << r.out;
    return nlohmann::json::array();
  }
}

// What a testbed made, captured while it is up, to check afterwards that none of it is left.
struct Footprint {
  std::vector<platform::ProcessIdentity> daemons;
  std::vector<std::string> cgroup_dirs;
};

Footprint capture() {
  Footprint f;
  auto s = load_state(state_file(kRoot));
  EXPECT_TRUE(s.ok()) << s.error().str();
  if (!s.ok()) return f;
  for (const auto& n : s->nodes) {
    if (auto id = platform::read_pid_file(node_paths(kRoot, n.name).pid_file); id.ok())
      f.daemons.push_back(*id);
    for (const auto& d : n.cgroup.distinct()) f.cgroup_dirs.push_back(d);
  }
  for (const auto& d : s->cgroup_parent.distinct()) f.cgroup_dirs.push_back(d);
  return f;
}

// The network namespaces of this test's instances: the default one's (osmo-tb-br, osmo-tb-nK)
// and the second's (osmo-tb-<second>-...). Another instance's beside this test (a developer's,
// the suite's) are not ours to judge.
std::vector<std::string> our_namespaces() {
  auto ns = platform::list_netns(kNetnsPrefix);
  EXPECT_TRUE(ns.ok()) << ns.error().str();
  if (!ns.ok()) return {};
  static const std::regex kDefaultInstance("osmo-tb-(br|n[0-9]+)");
  const std::string second = std::string("osmo-tb-") + kSecondInstance + "-";
  std::vector<std::string> ours;
  for (const std::string& name : *ns)
    if (std::regex_match(name, kDefaultInstance) || name.rfind(second, 0) == 0) ours.push_back(name);
  return ours;
}

void expect_nothing_left(const Footprint& f) {
  for (const std::string& name : our_namespaces()) ADD_FAILURE() << "left over namespace " << name;
  for (const auto& d : f.cgroup_dirs)
    EXPECT_FALSE(platform::path_exists(d)) << "left over cgroup " << d;
  for (const auto& id : f.daemons) {
    // Killed daemons are reparented to init, which reaps them; a zombie no longer runs.
    auto st = platform::process_state(id);
    EXPECT_TRUE(st == platform::ProcessState::kGone || st == platform::ProcessState::kZombie)
        << "daemon pid " << id.pid << " still " << platform::process_state_name(st);
  }
  EXPECT_FALSE(platform::path_exists(kRoot)) << "left over " << kRoot;
}

bool port_free(std::uint16_t port) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    int s = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    if (!ok) return false;
  }
  return true;
}

// A base port with `n` consecutive free ports on 127.0.0.1 (other tests and developers' daemons
// share loopback with us). Searched from a pid-dependent start to keep concurrent runs apart.
std::uint16_t free_base_port(int n) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto base = static_cast<std::uint16_t>(20000 + (::getpid() * 7 + attempt * 101) % 30000);
    bool all = true;
    for (int k = 0; k < n && all; ++k) all = port_free(static_cast<std::uint16_t>(base + k));
    if (all) return base;
  }
  ADD_FAILURE() << "no " << n << " consecutive free ports on 127.0.0.1";
  return 0;
}

// The machine has one testbed. ctest's RESOURCE_LOCK keeps the tests of one ctest run apart;
// this lock (docs/testbed.md, "Tests") also keeps apart test processes started separately, e.g. by
// several developers on one machine. Waits a bounded time, then fails the test clearly.
constexpr const char* kTestLockPath = "/run/osmo-testbed-tests.lock";
constexpr auto kTestLockWait = 300s;

int take_test_lock() {
  int fd = ::open(kTestLockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  auto end = std::chrono::steady_clock::now() + kTestLockWait;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (std::chrono::steady_clock::now() >= end) {
      ::close(fd);
      return -1;
    }
    std::this_thread::sleep_for(100ms);
  }
  return fd;
}

class TestbedMechanics : public ::testing::Test {
 protected:
  void SetUp() override {
    OSMO_REQUIRE_ROOT("the testbed (namespaces, cgroups)");
    lock_fd_ = take_test_lock();
    ASSERT_GE(lock_fd_, 0) << "another test process held " << kTestLockPath << " for "
                           << kTestLockWait.count() << " s";
    ::setenv(kDaemonOverrideEnv, FAKE_OSMOD, 1);
    ::unsetenv("FAKE_OSMOD_FAIL");
    auto r = tb({"down"});  // a testbed left by an earlier, interrupted run
    ASSERT_EQ(r.exit_status, 0) << r.out;
    r = tb({"--instance", kSecondInstance, "down"});
    ASSERT_EQ(r.exit_status, 0) << r.out;
    armed_ = true;
  }
  void TearDown() override {
    if (armed_) {
      auto r = tb({"down"});
      EXPECT_EQ(r.exit_status, 0) << r.out;
      r = tb({"--instance", kSecondInstance, "down"});
      EXPECT_EQ(r.exit_status, 0) << r.out;
      ::unsetenv(kDaemonOverrideEnv);
      ::unsetenv("FAKE_OSMOD_FAIL");
    }
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  }
  bool armed_ = false;
  int lock_fd_ = -1;
};

TEST_F(TestbedMechanics, UpExecNodeControlsDown) {
  auto up = tb({"up", "-n", "3", "--cpus-per-node", "0.5"});
  ASSERT_EQ(up.exit_status, 0) << up.out;
  Footprint fp = capture();
  ASSERT_EQ(fp.daemons.size(), 3u);

  // list: three running nodes with their addresses, pids and quota.
  auto nodes = list_json();
  ASSERT_EQ(nodes.size(), 3u);
  for (int k = 1; k <= 3; ++k) {
    const auto& n = nodes[k - 1];
    EXPECT_EQ(n["node"], node_name(k));
    EXPECT_EQ(n["address"], node_address(k, false));
    EXPECT_EQ(n["state"], "running");
    EXPECT_EQ(n["pid"], fp.daemons[k - 1].pid);
    EXPECT_DOUBLE_EQ(n["cpu_quota"].get<double>(), 0.5);
  }
  auto table = tb({"list"});
  EXPECT_EQ(table.exit_status, 0);
  EXPECT_NE(table.out.find("10.77.0.2:7946"), std::string::npos) << table.out;

  // Each daemon runs in its node's namespace and cgroup, with the contract's arguments.
  auto state = load_state(state_file(kRoot));
  ASSERT_TRUE(state.ok());
  auto layout = platform::CgroupLayout::detect();
  ASSERT_TRUE(layout.ok());
  for (int k = 1; k <= 3; ++k) {
    pid_t pid = fp.daemons[k - 1].pid;
    EXPECT_EQ(inode_of("/proc/" + std::to_string(pid) + "/ns/net"),
              inode_of(platform::netns_path(node_netns(k))));
    auto procs = platform::Cgroup::open(*layout, state->nodes[k - 1].cgroup).processes();
    ASSERT_TRUE(procs.ok());
    EXPECT_NE(std::find(procs->begin(), procs->end(), pid), procs->end());
  }
  auto args = platform::read_text_file(kRoot + "/n2/state/args");
  ASSERT_TRUE(args.ok());
  EXPECT_NE(args->find("--listen\n10.77.0.2:7946\n"), std::string::npos) << *args;
  EXPECT_NE(args->find("--join\n10.77.0.1:7946\n"), std::string::npos) << *args;
  EXPECT_NE(args->find("--load-scope\ncgroup\n"), std::string::npos) << *args;
  struct stat st {};
  ASSERT_EQ(::stat(secret_file(kRoot).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, static_cast<off_t>(kSecretBytes));

  // The bridge connects the nodes; the root namespace cannot reach them.
  auto probe = tb({"exec", "n1", "--", FAKE_OSMOD, "probe", "10.77.0.2:7946"});
  EXPECT_EQ(probe.exit_status, 0) << probe.out;
  EXPECT_EQ(probe.out, "n2\n");
  probe = tb({"exec", "n3", "--", FAKE_OSMOD, "probe", "10.77.0.1:7946"});
  EXPECT_EQ(probe.out, "n1\n");
  auto ping = tb({"exec", "n2", "--", FAKE_OSMOD, "ping", "10.77.0.3"});
  EXPECT_EQ(ping.exit_status, 0) << ping.out;
  EXPECT_EQ(ping.out, "echo reply from 10.77.0.3\n");
  // Checked by looking, never by sending: from the root namespace a packet to 10.77.0.0/24
  // would follow the default route off the machine.
  auto root_addrs = platform::run_command({"ip", "-o", "addr", "show"});
  auto root_links = platform::run_command({"ip", "-o", "link", "show"});
  ASSERT_TRUE(root_addrs.ok() && root_links.ok());
  EXPECT_EQ(root_addrs->out.find("10.77.0."), std::string::npos) << root_addrs->out;
  EXPECT_EQ(root_links->out.find("osmo-tb-"), std::string::npos) << root_links->out;
  // Inside a node there is no route but the bridge's subnet: nothing can leave the machine.
  auto routes = tb({"exec", "n1", "--", "ip", "-o", "route", "show"});
  EXPECT_EQ(routes.exit_status, 0) << routes.out;
  EXPECT_EQ(routes.out.rfind("10.77.0.0/24 dev eth0 ", 0), 0u) << routes.out;
  EXPECT_EQ(std::count(routes.out.begin(), routes.out.end(), '\n'), 1) << routes.out;

  // exec: exit status, environment, stdin, cgroup.
  EXPECT_EQ(tb({"exec", "n1", "--", "sh", "-c", "exit 7"}).exit_status, 7);
  EXPECT_EQ(tb({"exec", "n2", "--", "sh", "-c", "echo $OSMO_SOCKET"}).out,
            kRoot + "/n2/osmod.sock\n");
  EXPECT_EQ(sh(std::string("echo through-stdin | ") + OSMO_BIN + " testbed exec n1 -- cat").out,
            "through-stdin\n");
  auto cg = tb({"exec", "n2", "--", "cat", "/proc/self/cgroup"});
  EXPECT_NE(cg.out.find("osmo-testbed/n2"), std::string::npos) << cg.out;
  auto missing = tb({"exec", "n1", "--", "/nonexistent/cmd"});
  EXPECT_EQ(missing.exit_status, 127);
  EXPECT_NE(missing.out.find("command not found"), std::string::npos) << missing.out;
  auto bad_node = tb({"exec", "n9", "--", "true"});
  EXPECT_EQ(bad_node.exit_status, 2);
  EXPECT_NE(bad_node.out.find("no node 'n9'"), std::string::npos) << bad_node.out;

  // The quota holds a busy loop in n3 to about half a core, seen in n3's usage counter.
  auto n3 = platform::Cgroup::open(*layout, state->nodes[2].cgroup);
  auto u0 = n3.cpu_usage_us();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(tb({"exec", "n3", "--", FAKE_OSMOD, "spin", "1.5"}).exit_status, 0);
  auto t1 = std::chrono::steady_clock::now();
  auto u1 = n3.cpu_usage_us();
  ASSERT_TRUE(u0.ok() && u1.ok());
  double share =
      static_cast<double>(*u1 - *u0) / std::chrono::duration<double, std::micro>(t1 - t0).count();
  std::printf("testbed node n3 (--cpus-per-node 0.5): a busy loop got %.3f CPUs\n", share);
  EXPECT_GT(*u1, *u0);
  EXPECT_LT(share, 0.85) << "the node's CPU quota does not hold";

  // stop / start / pause / resume.
  ASSERT_EQ(tb({"stop", "n2"}).exit_status, 0);
  EXPECT_EQ(list_json()[1]["state"], "stopped");
  EXPECT_TRUE(list_json()[1]["pid"].is_null());
  auto again = tb({"start", "n2"});
  ASSERT_EQ(again.exit_status, 0) << again.out;
  auto n2 = list_json()[1];
  EXPECT_EQ(n2["state"], "running");
  EXPECT_NE(n2["pid"], fp.daemons[1].pid);
  EXPECT_EQ(tb({"exec", "n1", "--", FAKE_OSMOD, "probe", "10.77.0.2:7946"}).out, "n2\n");
  auto twice = tb({"start", "n2"});
  EXPECT_NE(twice.exit_status, 0);
  EXPECT_NE(twice.out.find("already running"), std::string::npos) << twice.out;
  fp = capture();  // the new n2 daemon

  ASSERT_EQ(tb({"pause", "n3"}).exit_status, 0);
  EXPECT_EQ(list_json()[2]["state"], "paused");
  EXPECT_NE(tb({"pause", "n3"}).exit_status, 0);
  ASSERT_EQ(tb({"resume", "n3"}).exit_status, 0);
  EXPECT_EQ(list_json()[2]["state"], "running");

  // A second up refuses; down removes everything, and again finds nothing.
  auto second = tb({"up", "-n", "2"});
  EXPECT_NE(second.exit_status, 0);
  EXPECT_NE(second.out.find("already up"), std::string::npos) << second.out;
  ASSERT_EQ(tb({"pause", "n1"}).exit_status, 0);  // down must also handle a stopped daemon
  auto down = tb({"down"});
  ASSERT_EQ(down.exit_status, 0) << down.out;
  EXPECT_NE(down.out.find("killed 3 daemon(s) and 0 other process(es), removed 3 cgroup(s), 4 "
                          "namespace(s)"),
            std::string::npos)
      << down.out;
  expect_nothing_left(fp);
  auto down2 = tb({"down"});
  EXPECT_EQ(down2.exit_status, 0);
  EXPECT_NE(down2.out.find("nothing to remove"), std::string::npos) << down2.out;
}

TEST_F(TestbedMechanics, DownAfterACrashFindsLeftoversByName) {
  ASSERT_EQ(tb({"up", "-n", "2"}).exit_status, 0);
  Footprint fp = capture();
  // A process started in n1 that the record knows nothing about, then the record is lost, as if
  // the machine's testbed had been half torn down by a crash.
  auto bg = sh(std::string(OSMO_BIN) + " testbed exec n1 -- sleep 120 >/dev/null 2>&1 & echo $!");
  ASSERT_EQ(bg.exit_status, 0);
  pid_t stray = std::atoi(bg.out.c_str());
  ASSERT_GT(stray, 0);
  auto stray_id = platform::identify_process(stray);
  ASSERT_TRUE(stray_id.ok());
  // Wait until it has joined n1's cgroup (exec moves itself there before it execs sleep).
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (platform::read_text_file("/proc/" + std::to_string(stray) + "/cgroup")
                 ->find("osmo-testbed/n1") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(::unlink(state_file(kRoot).c_str()), 0);

  auto down = tb({"down"});
  ASSERT_EQ(down.exit_status, 0) << down.out;
  EXPECT_NE(down.out.find("killed 2 daemon(s) and 1 other process(es)"), std::string::npos)
      << down.out;
  fp.daemons.push_back(*stray_id);
  expect_nothing_left(fp);
}

TEST_F(TestbedMechanics, UpRefusesLeftoversThatDownRemoves) {
  auto layout = platform::CgroupLayout::detect();
  ASSERT_TRUE(layout.ok());
  platform::CgroupDirs parent =
      platform::cgroup_dirs_at(*layout, std::string("/") + kCgroupParentName);
  ASSERT_TRUE(platform::Cgroup::create(*layout, parent, std::nullopt).ok());
  auto up = tb({"up", "-n", "2"});
  EXPECT_NE(up.exit_status, 0);
  EXPECT_NE(up.out.find("is left over from an earlier testbed"), std::string::npos) << up.out;
  auto down = tb({"down"});
  EXPECT_EQ(down.exit_status, 0) << down.out;
  EXPECT_NE(down.out.find("removed 1 cgroup(s)"), std::string::npos) << down.out;

  ASSERT_TRUE(platform::create_netns(node_netns(7)).ok());
  up = tb({"up", "-n", "2"});
  EXPECT_NE(up.exit_status, 0);
  EXPECT_NE(up.out.find("network namespace osmo-tb-n7 is left over"), std::string::npos) << up.out;
  down = tb({"down"});
  EXPECT_EQ(down.exit_status, 0) << down.out;
  EXPECT_NE(down.out.find("1 namespace(s) (osmo-tb-n7)"), std::string::npos) << down.out;
  ASSERT_EQ(::mkdir(kRoot.c_str(), 0755), 0);  // a state directory without its record
  up = tb({"up", "-n", "2"});
  EXPECT_NE(up.exit_status, 0);
  EXPECT_NE(up.out.find(kRoot + " is left over"), std::string::npos) << up.out;
  down = tb({"down"});
  EXPECT_EQ(down.exit_status, 0) << down.out;
  Footprint fp;
  fp.cgroup_dirs = parent.distinct();
  expect_nothing_left(fp);
}

TEST_F(TestbedMechanics, DaemonThatFailsMakesUpFailClearlyAndCleanUp) {
  ::setenv("FAKE_OSMOD_FAIL", "n2", 1);
  auto up = tb({"up", "-n", "3", "--timeout", "10"});
  EXPECT_EQ(up.exit_status, 1);
  // Seen either while waiting for its socket or, if it died within microseconds, at spawn.
  EXPECT_TRUE(up.out.find("node n2: the daemon exited before creating its control socket") !=
                  std::string::npos ||
              up.out.find("node n2: spawn") != std::string::npos)
      << up.out;
  EXPECT_NE(up.out.find("refusing to start node n2"), std::string::npos)
      << "no log tail: " << up.out;
  expect_nothing_left(Footprint{});
}

// Two testbeds at once: the default instance and a named one have their own namespaces, subnets,
// cgroups and state; each reaches only its own nodes, and taking one down leaves the other whole.
TEST_F(TestbedMechanics, TwoInstancesSideBySide) {
  ASSERT_EQ(tb({"up", "-n", "2", "--cpus-per-node", "0.5"}).exit_status, 0);
  auto up2 = tb({"--instance", kSecondInstance, "up", "-n", "2", "--cpus-per-node", "0.5"});
  ASSERT_EQ(up2.exit_status, 0) << up2.out;
  const int subnet = instance_subnet(kSecondInstance);
  ASSERT_GE(subnet, 1);
  const std::string addr1 = fmt::format("10.77.{}.1", subnet), addr2 = fmt::format("10.77.{}.2", subnet);
  EXPECT_NE(up2.out.find(fmt::format("(instance {}): 2 node(s), namespaces on 10.77.{}.0/24", kSecondInstance, subnet)),
            std::string::npos) << up2.out;

  // --instance after the subcommand and $OSMO_TESTBED_INSTANCE name the same testbed.
  auto second = tb({"list", "--json", "--instance", kSecondInstance});
  ASSERT_EQ(second.exit_status, 0) << second.out;
  auto nodes = nlohmann::json::parse(second.out);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0]["address"], addr1);
  EXPECT_EQ(nodes[0]["netns"], std::string("osmo-tb-") + kSecondInstance + "-n1");
  EXPECT_EQ(nodes[0]["bridge_netns"], std::string("osmo-tb-") + kSecondInstance + "-br");
  EXPECT_EQ(nodes[1]["state"], "running");
  auto env_list = sh(std::string("OSMO_TESTBED_INSTANCE=") + kSecondInstance + " " + OSMO_BIN + " testbed list");
  EXPECT_NE(env_list.out.find(addr2), std::string::npos) << env_list.out;
  auto first = list_json();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[1]["address"], "10.77.0.2");

  // Each instance's nodes reach each other, on their own subnet, in their own cgroups.
  auto probe = tb({"--instance", kSecondInstance, "exec", "n1", "--", FAKE_OSMOD, "probe", addr2 + ":7946"});
  EXPECT_EQ(probe.out, "n2\n") << probe.out;
  probe = tb({"exec", "n1", "--", FAKE_OSMOD, "probe", "10.77.0.2:7946"});
  EXPECT_EQ(probe.out, "n2\n") << probe.out;
  auto cg = tb({"--instance", kSecondInstance, "exec", "n2", "--", "cat", "/proc/self/cgroup"});
  EXPECT_NE(cg.out.find(std::string("osmo-testbed-") + kSecondInstance + "/n2"), std::string::npos) << cg.out;
  // The instances' networks never touch: no route from one to the other.
  auto routes = tb({"--instance", kSecondInstance, "exec", "n1", "--", "ip", "-o", "route", "show"});
  EXPECT_EQ(routes.out.rfind(fmt::format("10.77.{}.0/24 dev eth0 ", subnet), 0), 0u) << routes.out;
  EXPECT_EQ(std::count(routes.out.begin(), routes.out.end(), '\n'), 1) << routes.out;

  // A bad name is refused before anything is made.
  auto bad = tb({"--instance", "Bad_Name", "up", "-n", "1"});
  EXPECT_NE(bad.exit_status, 0);
  EXPECT_NE(bad.out.find("not an instance name"), std::string::npos) << bad.out;

  // Down of the default instance leaves the second one running, and the other way round.
  Footprint fp = capture();
  auto down = tb({"down"});
  ASSERT_EQ(down.exit_status, 0) << down.out;
  EXPECT_EQ(down.out.find(kSecondInstance), std::string::npos) << down.out;
  for (const auto& id : fp.daemons) EXPECT_NE(platform::process_state(id), platform::ProcessState::kRunning);
  EXPECT_FALSE(platform::path_exists(kRoot));
  EXPECT_TRUE(platform::path_exists(platform::netns_path(std::string("osmo-tb-") + kSecondInstance + "-n2")));
  probe = tb({"--instance", kSecondInstance, "exec", "n2", "--", FAKE_OSMOD, "probe", addr1 + ":7946"});
  EXPECT_EQ(probe.out, "n1\n") << probe.out;
  down = tb({"--instance", kSecondInstance, "down"});
  ASSERT_EQ(down.exit_status, 0) << down.out;
  EXPECT_NE(down.out.find("3 namespace(s)"), std::string::npos) << down.out;  // two nodes and the bridge
  EXPECT_NE(down.out.find(std::string("osmo-tb-") + kSecondInstance + "-br"), std::string::npos) << down.out;
  for (const std::string& name : our_namespaces()) ADD_FAILURE() << "left over namespace " << name;
}

TEST_F(TestbedMechanics, LoopbackWithCgroups) {
  const std::uint16_t base = free_base_port(2);
  const std::string second = "127.0.0.1:" + std::to_string(base + 1);
  auto up = tb(
      {"up", "-n", "2", "--loopback", "--base-port", std::to_string(base), "--cpus-per-node", "1"});
  ASSERT_EQ(up.exit_status, 0) << up.out;
  Footprint fp = capture();
  auto nodes = list_json();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[1]["address"], "127.0.0.1");
  EXPECT_EQ(nodes[1]["port"], base + 1);
  EXPECT_EQ(nodes[1]["netns"], "");
  auto probe = platform::run_command({FAKE_OSMOD, "probe", second});
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(probe->out, "n2\n");
  EXPECT_TRUE(our_namespaces().empty()) << "a loopback testbed makes no namespace";
  ASSERT_EQ(tb({"down"}).exit_status, 0);
  expect_nothing_left(fp);
}

TEST_F(TestbedMechanics, LoopbackRefusesAPortInUse) {
  const std::uint16_t base = free_base_port(2);
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(base + 1));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  auto up = tb({"up", "-n", "2", "--loopback", "--base-port", std::to_string(base)});
  ::close(s);
  EXPECT_NE(up.exit_status, 0);
  EXPECT_NE(up.out.find("127.0.0.1:" + std::to_string(base + 1) + " (TCP) cannot be used"),
            std::string::npos)
      << up.out;
  EXPECT_FALSE(platform::path_exists(kRoot));  // refused before anything was made
}

TEST_F(TestbedMechanics, LoopbackWithoutRoot) {
  // The binaries are copied where an unprivileged user can run them (the build tree may sit in
  // a directory only root can enter); the testbed then runs as nobody.
  char tmpl[] = "/tmp/osmo-tb-nonroot-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string bin = tmpl;
  const std::string state = "/tmp/osmo-testbed-65534";
  std::error_code ec;
  std::filesystem::remove_all(state,
                              ec);  // an earlier interrupted run's (its daemons exit by themselves)
  ::chmod(bin.c_str(), 0755);
  std::filesystem::copy_file(OSMO_BIN, bin + "/osmo");
  std::filesystem::copy_file(FAKE_OSMOD, bin + "/fake_osmod");
  auto as_nobody = [&](const std::string& args) {
    return sh(
        "setpriv --reuid=65534 --regid=65534 --clear-groups env -u XDG_RUNTIME_DIR "
        "OSMO_TESTBED_DAEMON=" +
        bin + "/fake_osmod " + bin + "/osmo testbed " + args + " 2>&1");
  };
  std::vector<platform::ProcessIdentity> daemons;
  auto cleanup = [&] {
    (void)as_nobody("down");
    for (const auto& id : daemons) (void)platform::signal_process(id, SIGKILL);
    std::filesystem::remove_all(bin, ec);
    std::filesystem::remove_all(state, ec);
  };
  struct Guard {
    std::function<void()> f;
    ~Guard() { f(); }
  } guard{cleanup};

  auto no_ns = as_nobody("up -n 2");
  EXPECT_NE(no_ns.exit_status, 0);
  EXPECT_NE(no_ns.out.find("network namespaces need root"), std::string::npos) << no_ns.out;
  auto no_cg = as_nobody("up -n 2 --loopback --cpus-per-node 0.5");
  EXPECT_NE(no_cg.exit_status, 0);
  EXPECT_NE(no_cg.out.find("needs root"), std::string::npos) << no_cg.out;

  const std::uint16_t base = free_base_port(2);
  auto up = as_nobody("up -n 2 --loopback --base-port " + std::to_string(base));
  ASSERT_EQ(up.exit_status, 0) << up.out;
  EXPECT_NE(up.out.find("state in " + state), std::string::npos) << up.out;
  for (const char* n : {"n1", "n2"}) {
    auto id = platform::read_pid_file(state + "/" + n + "/osmod.pid");
    ASSERT_TRUE(id.ok()) << id.error().str();
    daemons.push_back(*id);
    auto status = platform::read_text_file("/proc/" + std::to_string(id->pid) + "/status");
    ASSERT_TRUE(status.ok());
    EXPECT_NE(status->find("Uid:\t65534\t"), std::string::npos)
        << "daemon " << n << " not run as nobody";
  }
  auto probe = platform::run_command(
      {bin + "/fake_osmod", "probe", "127.0.0.1:" + std::to_string(base + 1)});
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(probe->out, "n2\n");
  EXPECT_EQ(as_nobody("exec n1 -- sh -c 'echo $OSMO_SOCKET'").out, state + "/n1/osmod.sock\n");
  EXPECT_EQ(as_nobody("stop n2").exit_status, 0);
  auto restarted = as_nobody("start n2");
  EXPECT_EQ(restarted.exit_status, 0) << restarted.out;
  if (auto id = platform::read_pid_file(state + "/n2/osmod.pid"); id.ok()) daemons.push_back(*id);
  EXPECT_NE(as_nobody("list").out.find("127.0.0.1:" + std::to_string(base + 1)), std::string::npos);

  auto down = as_nobody("down");
  ASSERT_EQ(down.exit_status, 0) << down.out;
  EXPECT_NE(down.out.find("killed 2 daemon(s)"), std::string::npos) << down.out;
  for (const auto& id : daemons) {
    auto st = platform::process_state(id);
    EXPECT_TRUE(st == platform::ProcessState::kGone || st == platform::ProcessState::kZombie)
        << "daemon pid " << id.pid << " still " << platform::process_state_name(st);
  }
  EXPECT_FALSE(platform::path_exists(state));
}

TEST(TestbedCli, HelpAndUsageErrors) {
  auto help = osmo({"testbed", "--help"});
  EXPECT_EQ(help.exit_status, 0);
  for (const char* word :
       {"up", "down", "exec", "list", "stop", "start", "pause", "resume", "10.77.0.K"})
    EXPECT_NE(help.out.find(word), std::string::npos) << word << " missing from:\n" << help.out;
  auto up_help = osmo({"testbed", "up", "--help"});
  EXPECT_NE(up_help.out.find("--cpus-per-node"), std::string::npos) << up_help.out;
  EXPECT_NE(osmo({"testbed", "up"}).exit_status, 0);  // -n is required
  EXPECT_NE(osmo({"testbed", "up", "-n", "0"}).exit_status, 0);
}

}  // namespace
}  // namespace osmo::testbed
