// SPDX-License-Identifier: GPL-2.0-or-later
// Cgroups, network namespaces and detached processes on the real kernel (root only). Everything
// created here is named osmo-pt-<pid> and removed by guards, also when an assertion fails.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "base/scope_guard.hpp"
#include "platform/linux/cgroup.hpp"
#include "platform/linux/command.hpp"
#include "platform/linux/load_sampler.hpp"
#include "platform/linux/netns.hpp"
#include "platform/linux/process.hpp"
#include "platform/linux/sysfs_io.hpp"
#include "eventually.hpp"
#include "require_root.hpp"

namespace osmo::platform {
namespace {

using namespace std::chrono_literals;

std::string unique_name() {
  return "osmo-pt-" + std::to_string(::getpid());
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// A child that spins until killed; reaped by the guard.
pid_t start_spinner() {
  pid_t pid = ::fork();
  if (pid == 0) {
    volatile unsigned long x = 0;
    for (;;) x = x + 1;
  }
  return pid;
}

void kill_and_reap(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

using osmo::testing::eventually;

TEST(CgroupReal, QuotaUsageProcessesAndRemoval) {
  OSMO_REQUIRE_ROOT("creating a cgroup");
  auto layout = CgroupLayout::detect();
  ASSERT_TRUE(layout.ok()) << layout.error().str();
  const std::string path = "/" + unique_name();
  CgroupDirs dirs = cgroup_dirs_at(*layout, path);
  auto cg = Cgroup::create(*layout, dirs, 0.5);
  ASSERT_TRUE(cg.ok()) << cg.error().str();
  pid_t spinner = -1;
  ScopeGuard cleanup([&] {
    kill_and_reap(spinner);
    (void)cg->remove(2000ms);
  });

  auto quota = cg->cpu_quota();
  ASSERT_TRUE(quota.ok()) << quota.error().str();
  ASSERT_TRUE(quota->has_value());
  EXPECT_DOUBLE_EQ(**quota, 0.5);

  SamplerOptions o;
  o.cgroup_path = path;
  auto sampler = LoadSampler::create(LoadScope::kCgroup, o);
  ASSERT_TRUE(sampler.ok()) << sampler.error().str();
  EXPECT_NE(sampler->describe().find(path + " (cpu quota 0.5)"), std::string::npos)
      << sampler->describe();
  auto idle = sampler->sample();
  ASSERT_TRUE(idle.ok()) << idle.error().str();
  EXPECT_DOUBLE_EQ(idle->cpus, 0.5);
  EXPECT_EQ(idle->runnable, 0);

  spinner = start_spinner();
  ASSERT_GT(spinner, 0);
  ASSERT_TRUE(cg->add_process(spinner).ok());
  auto procs = cg->processes();
  ASSERT_TRUE(procs.ok()) << procs.error().str();
  EXPECT_EQ(*procs, std::vector<pid_t>{spinner});
  EXPECT_TRUE(eventually([&] {
    auto s = sampler->sample();
    return s.ok() && s->runnable == 1;
  })) << "the spinner never showed as runnable in its cgroup";

  // Over ~1 s the spinner may use at most about half a CPU. Logged, with only a loose bound.
  auto u0 = cg->cpu_usage_us();
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1000ms);
  auto u1 = cg->cpu_usage_us();
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(u0.ok() && u1.ok());
  double wall_us = std::chrono::duration<double, std::micro>(t1 - t0).count();
  double share = static_cast<double>(*u1 - *u0) / wall_us;
  std::printf("cgroup %s: busy loop under a 0.5-CPU quota used %.3f CPUs\n", path.c_str(), share);
  EXPECT_GT(*u1, *u0);
  EXPECT_LT(share, 0.85) << "the CPU quota does not limit the cgroup";

  // Removal kills what is inside and deletes every directory.
  ASSERT_TRUE(cg->remove(2000ms).ok());
  ::waitpid(spinner, nullptr, 0);
  spinner = -1;
  EXPECT_FALSE(cg->exists());
  for (const auto& d : dirs.distinct()) EXPECT_FALSE(path_exists(d)) << d;
  EXPECT_TRUE(cg->remove(100ms).ok());  // idempotent
}

// The kernel's v2 interface, on the empty v2 hierarchy a hybrid machine mounts at
// /sys/fs/cgroup/unified (no controllers there, so no quota; on a pure v2 machine the test above
// already runs on v2).
TEST(CgroupReal, V2InterfaceOnTheHybridUnifiedHierarchy) {
  OSMO_REQUIRE_ROOT("creating a cgroup");
  const std::string root = "/sys/fs/cgroup/unified";
  if (!path_exists(root + "/cgroup.controllers")) GTEST_SKIP() << "no v2 hierarchy at " << root;
  auto layout = CgroupLayout::detect(root);
  ASSERT_TRUE(layout.ok()) << layout.error().str();
  ASSERT_EQ(layout->version(), CgroupVersion::kV2);
  const std::string path = "/" + unique_name() + "-v2";
  auto cg = Cgroup::create(*layout, cgroup_dirs_at(*layout, path), std::nullopt);
  ASSERT_TRUE(cg.ok()) << cg.error().str();
  pid_t spinner = -1;
  ScopeGuard cleanup([&] {
    kill_and_reap(spinner);
    (void)cg->remove(2000ms);
  });
  spinner = start_spinner();
  ASSERT_GT(spinner, 0);
  ASSERT_TRUE(cg->add_process(spinner).ok());
  EXPECT_EQ(*cg->processes(), std::vector<pid_t>{spinner});

  SamplerOptions o;
  o.cgroup_root = root;
  o.cgroup_path = path;
  auto sampler = LoadSampler::create(LoadScope::kCgroup, o);
  ASSERT_TRUE(sampler.ok()) << sampler.error().str();
  EXPECT_EQ(sampler->describe(), "cgroup v2 " + path + " (no cpu quota)");
  EXPECT_TRUE(eventually([&] {
    auto s = sampler->sample();
    return s.ok() && s->runnable == 1;  // from cgroup.threads
  }));
  auto u0 = cg->cpu_usage_us();  // cpu.stat usage_usec
  std::this_thread::sleep_for(200ms);
  auto u1 = cg->cpu_usage_us();
  ASSERT_TRUE(u0.ok() && u1.ok()) << (u0.ok() ? u1.error().str() : u0.error().str());
  EXPECT_GT(*u1, *u0);

  ASSERT_TRUE(cg->remove(2000ms).ok());
  ::waitpid(spinner, nullptr, 0);
  spinner = -1;
  EXPECT_FALSE(cg->exists());
}

TEST(NetnsReal, CreateEnterListDelete) {
  OSMO_REQUIRE_ROOT("creating a network namespace");
  const std::string name = unique_name();
  ASSERT_TRUE(create_netns(name).ok());
  ScopeGuard cleanup([&] { (void)delete_netns(name); });
  EXPECT_FALSE(create_netns(name).ok());  // exists already

  auto names = list_netns("osmo-pt-");
  ASSERT_TRUE(names.ok()) << names.error().str();
  EXPECT_NE(std::find(names->begin(), names->end(), name), names->end());

  auto fd = open_netns(name);
  ASSERT_TRUE(fd.ok()) << fd.error().str();
  ino_t in_thread = 0;
  std::thread t([&] {
    if (enter_netns(fd->get(), name).ok()) in_thread = inode_of("/proc/thread-self/ns/net");
  });
  t.join();
  EXPECT_EQ(in_thread, inode_of(netns_path(name)));
  EXPECT_NE(inode_of("/proc/thread-self/ns/net"), in_thread);  // this thread stayed put

  EXPECT_TRUE(ip_in_netns(name, {"link", "set", "lo", "up"}).ok());
  EXPECT_FALSE(ip_in_netns(name, {"link", "set", "nosuchdev", "up"}).ok());

  ASSERT_TRUE(delete_netns(name).ok());
  EXPECT_FALSE(netns_exists(name));
  EXPECT_TRUE(delete_netns(name).ok());  // idempotent
}

TEST(ProcessReal, SpawnDetachedInNetnsAndCgroup) {
  OSMO_REQUIRE_ROOT("a namespace and cgroup for a detached process");
  const std::string name = unique_name();
  auto layout = CgroupLayout::detect();
  ASSERT_TRUE(layout.ok()) << layout.error().str();
  ASSERT_TRUE(create_netns(name).ok());
  auto cg = Cgroup::create(*layout, cgroup_dirs_at(*layout, "/" + name + "-spawn"), std::nullopt);
  ASSERT_TRUE(cg.ok()) << cg.error().str();
  auto tmp = std::filesystem::temp_directory_path() / (name + "-spawn");
  std::filesystem::create_directories(tmp);
  ScopeGuard cleanup([&] {
    (void)cg->remove(2000ms);
    (void)delete_netns(name);
    std::filesystem::remove_all(tmp);
  });

  DetachedSpawnOptions o;
  o.exe = "/bin/sh";
  o.argv = {"sh", "-c", "echo started $OSMO_TEST_VAR; exec sleep 30"};
  o.env = {"OSMO_TEST_VAR=hello"};
  o.log_path = (tmp / "log").string();
  o.pid_file = (tmp / "pid").string();
  o.netns = name;
  o.cgroup = &*cg;
  auto id = spawn_detached(o);
  ASSERT_TRUE(id.ok()) << id.error().str();

  auto from_file = read_pid_file(o.pid_file);
  ASSERT_TRUE(from_file.ok()) << from_file.error().str();
  EXPECT_EQ(*from_file, *id);
  EXPECT_EQ(process_state(*id), ProcessState::kRunning);
  EXPECT_EQ(inode_of("/proc/" + std::to_string(id->pid) + "/ns/net"), inode_of(netns_path(name)));
  auto procs = cg->processes();
  ASSERT_TRUE(procs.ok());
  EXPECT_EQ(*procs, std::vector<pid_t>{id->pid});
  // Not our child, and in a session of its own.
  auto stat = read_text_file("/proc/" + std::to_string(id->pid) + "/stat");
  ASSERT_TRUE(stat.ok());
  EXPECT_NE(::getsid(id->pid), ::getsid(0));
  EXPECT_EQ(::waitpid(id->pid, nullptr, WNOHANG), -1);  // ECHILD: not our child
  EXPECT_TRUE(eventually([&] {
    auto log = read_text_file(o.log_path);
    return log.ok() && log->find("started hello") != std::string::npos;
  }));

  ASSERT_TRUE(signal_process(*id, SIGSTOP).ok());
  EXPECT_TRUE(eventually([&] { return process_state(*id) == ProcessState::kStopped; }));
  ASSERT_TRUE(signal_process(*id, SIGCONT).ok());
  EXPECT_TRUE(eventually([&] { return process_state(*id) == ProcessState::kRunning; }));
  ASSERT_TRUE(signal_process(*id, SIGKILL).ok());
  EXPECT_TRUE(eventually([&] { return process_state(*id) != ProcessState::kRunning; }));

  // A recycled pid is not ours: a different start time is refused without signalling.
  ProcessIdentity stale = *id;
  stale.start_ticks += 1;
  EXPECT_EQ(process_state(stale), ProcessState::kGone);
  EXPECT_FALSE(signal_process(stale, 0).ok());
}

// pass_fds land at 3, 4, ... in order, even when they already sit on those numbers swapped;
// nothing else leaks.
TEST(ProcessReal, SpawnPassesFdsInOrder) {
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  UniqueFd out_r(out[0]), out_w(out[1]);
  UniqueFd memfd(::memfd_create("osmo-test-pass", MFD_CLOEXEC));
  ASSERT_TRUE(memfd.valid());
  ASSERT_EQ(::write(memfd.get(), "spec-bytes", 10), 10);
  ASSERT_EQ(::lseek(memfd.get(), 0, SEEK_SET), 0);
  UniqueFd leak(::open("/dev/null", O_RDONLY));  // not CLOEXEC: must still not reach the child
  DetachedSpawnOptions o;
  o.exe = "/bin/sh";
  // fd 3: the pipe, fd 4: the memfd; then report which fds above 4 are open.
  o.argv = {"sh", "-c", "cat <&4 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' ' >&3"};
  o.pass_fds = {out_w.get(), memfd.get()};
  auto id = spawn_detached(o);
  ASSERT_TRUE(id.ok()) << id.error().str();
  out_w.reset();
  std::string got;
  char buf[256];
  for (ssize_t n; (n = ::read(out_r.get(), buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  EXPECT_EQ(got.substr(0, 10), "spec-bytes") << got;
  // 0-2, 3, 4, and the fd `ls` opens for /proc/self/fd itself: no 6th fd.
  EXPECT_EQ(got.substr(10), "0 1 2 3 4 5 ") << got;
}

TEST(ProcessReal, SpawnFailuresNameTheStage) {
  auto tmp = std::filesystem::temp_directory_path() / (unique_name() + "-fail");
  std::filesystem::create_directories(tmp);
  ScopeGuard cleanup([&] { std::filesystem::remove_all(tmp); });
  DetachedSpawnOptions o;
  o.exe = "/nonexistent/osmo-program";
  o.argv = {"x"};
  o.log_path = (tmp / "log").string();
  auto r = spawn_detached(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("exec failed"), std::string::npos) << r.error().str();
  EXPECT_EQ(r.error().code, ENOENT);

  o.exe = "/bin/true";
  o.log_path = (tmp / "no-such-dir" / "log").string();
  auto r2 = spawn_detached(o);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().str().find("open log"), std::string::npos) << r2.error().str();
}

TEST(CommandReal, StatusAndOutput) {
  auto r = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->exit_status, 3);
  EXPECT_NE(r->out.find("out"), std::string::npos);
  EXPECT_NE(r->out.find("err"), std::string::npos);
  auto checked = run_checked({"sh", "-c", "echo nope >&2; exit 2"});
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.error().message.find("status 2: nope"), std::string::npos)
      << checked.error().message;
  EXPECT_FALSE(run_command({"/nonexistent/program"}).ok() &&
               run_command({"/nonexistent/program"})->exit_status == 0);
}

}  // namespace
}  // namespace osmo::platform
