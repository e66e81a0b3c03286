// SPDX-License-Identifier: GPL-2.0-or-later
// One testbed node's daemon (see node_daemon.hpp).
#include "testbed/node_daemon.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "platform/linux/sysfs_io.hpp"
#include "testbed/layout.hpp"

namespace osmo::testbed {
namespace {

using namespace std::chrono_literals;

constexpr auto kPollInterval = 20ms;
constexpr auto kKillWait = 3000ms;
constexpr int kLogTailLines = 20;

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// Our own executable, readable in `ps` output ("/proc/self/exe" if it cannot be resolved).
std::string self_exe_for_argv0() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/proc/self/exe";
  std::string s(buf, static_cast<std::size_t>(n));
  const std::string deleted = " (deleted)";  // rebuilt while we run
  if (s.size() > deleted.size() &&
      s.compare(s.size() - deleted.size(), deleted.size(), deleted) == 0)
    s.resize(s.size() - deleted.size());
  return s;
}

}  // namespace

const char* node_state_name(NodeState s) {
  switch (s) {
    case NodeState::kRunning:
      return "running";
    case NodeState::kPaused:
      return "paused";
    case NodeState::kStopped:
      return "stopped";
  }
  return "?";
}

NodeProcess inspect_node(const std::string& root, const NodeRecord& node) {
  NodeProcess p;
  auto id = platform::read_pid_file(node_paths(root, node.name).pid_file);
  if (!id.ok()) return p;
  switch (platform::process_state(*id)) {
    case platform::ProcessState::kRunning:
      p.state = NodeState::kRunning;
      break;
    case platform::ProcessState::kStopped:
      p.state = NodeState::kPaused;
      break;
    default:
      return p;  // gone, or a zombie waiting for init to reap it
  }
  p.id = *id;
  return p;
}

std::vector<std::string> daemon_arguments(const std::string& root, const TestbedState& state,
                                          const NodeRecord& node) {
  NodePaths paths = node_paths(root, node.name);
  std::vector<std::string> a{"daemon", "--name", node.name, "--listen",
                             node.address + ":" + std::to_string(node.port)};
  int seeds = 0;
  for (const auto& other : state.nodes) {
    if (other.name == node.name) continue;
    if (++seeds > kMaxJoinSeeds) break;
    a.push_back("--join");
    a.push_back(other.address + ":" + std::to_string(other.port));
  }
  for (const std::string& s : {std::string("--secret-file"), secret_file(root),
                               std::string("--state-dir"), paths.state_dir, std::string("--socket"),
                               paths.socket, std::string("--load-scope"), std::string("cgroup")})
    a.push_back(s);
  if (const char* extra = std::getenv(kDaemonArgsEnv); extra != nullptr) {
    std::istringstream words(extra);
    for (std::string w; words >> w;) a.push_back(w);
  }
  return a;
}

Result<platform::ProcessIdentity> start_node_daemon(const std::string& root,
                                                    const TestbedState& state,
                                                    const NodeRecord& node) {
  NodePaths paths = node_paths(root, node.name);
  if (::mkdir(paths.dir.c_str(), 0755) != 0 && errno != EEXIST)
    return errno_error("mkdir {}", paths.dir);
  if (::mkdir(paths.state_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return errno_error("mkdir {}", paths.state_dir);
  if (::unlink(paths.socket.c_str()) != 0 && errno != ENOENT)
    return errno_error("remove stale control socket {}", paths.socket);

  platform::DetachedSpawnOptions o;
  const char* env_override = std::getenv(kDaemonOverrideEnv);
  std::string override_exe = (env_override != nullptr && *env_override != '\0')
                                 ? std::string(env_override)
                                 : state.daemon_override;
  if (!override_exe.empty()) {
    o.exe = override_exe;
    o.argv.push_back(override_exe);
  } else {
    o.exe = "/proc/self/exe";  // resolved in the forked child, which is still this program
    o.argv.push_back(self_exe_for_argv0());
  }
  for (auto& a : daemon_arguments(root, state, node)) o.argv.push_back(std::move(a));
  o.env = {"OSMO_SOCKET=" + paths.socket, "OSMO_TESTBED_NODE=" + node.name};
  o.log_path = paths.log;
  o.pid_file = paths.pid_file;
  o.netns = node.netns;
  o.cwd = paths.dir;
  std::optional<platform::Cgroup> cg;
  if (!node.cgroup.empty()) {
    OSMO_ASSIGN_OR_RETURN(auto layout, platform::CgroupLayout::detect());
    cg = platform::Cgroup::open(layout, node.cgroup);
    o.cgroup = &*cg;
  }
  auto id = platform::spawn_detached(o);
  if (!id.ok()) {
    // A daemon that dies at once (before we could even read its identity) explains why in its log.
    std::string tail = log_tail(paths.log, kLogTailLines);
    return make_error("node {}: {}{}", node.name, id.error().str(),
                      tail.empty() ? "" : "; last lines of " + paths.log + ":\n" + tail);
  }
  return id;
}

Status wait_for_control_sockets(const std::string& root, const TestbedState& state,
                                const std::vector<std::string>& names, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<std::string> pending = names;
  while (!pending.empty()) {
    for (auto it = pending.begin(); it != pending.end();) {
      const NodeRecord* node = state.find(*it);
      if (node == nullptr) return make_error("no node {} in this testbed", *it);
      NodePaths paths = node_paths(root, *it);
      if (is_socket(paths.socket)) {
        it = pending.erase(it);
        continue;
      }
      if (inspect_node(root, *node).state == NodeState::kStopped) {
        return make_error(
            "node {}: the daemon exited before creating its control socket {}; "
            "last lines of {}:\n{}",
            *it, paths.socket, paths.log, log_tail(paths.log, kLogTailLines));
      }
      ++it;
    }
    if (pending.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      const std::string& name = pending.front();
      NodePaths paths = node_paths(root, name);
      return make_error(
          "node {}: no control socket {} after {} ms (daemon still running); "
          "last lines of {}:\n{}",
          name, paths.socket, timeout_ms, paths.log, log_tail(paths.log, kLogTailLines));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return ok_status();
}

Status kill_node_daemon(const std::string& root, const NodeRecord& node) {
  NodeProcess p = inspect_node(root, node);
  if (!p.id) return ok_status();
  Status s = platform::signal_process(*p.id, SIGKILL);
  if (!s.ok() && s.error().code != ESRCH)
    return make_error("node {}: {}", node.name, s.error().str());
  auto deadline = std::chrono::steady_clock::now() + kKillWait;
  while (inspect_node(root, node).state != NodeState::kStopped) {
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error("node {}: daemon pid {} survived SIGKILL for {} ms", node.name, p.id->pid,
                        kKillWait.count());
    std::this_thread::sleep_for(kPollInterval);
  }
  return ok_status();
}

std::string log_tail(const std::string& path, int lines) {
  auto text = platform::read_text_file(path);
  if (!text.ok()) return "";
  std::string_view t = platform::trim(*text);
  std::size_t pos = t.size();
  for (int i = 0; i < lines && pos > 0; ++i) {
    auto nl = t.rfind('\n', pos - 1);
    if (nl == std::string_view::npos) {
      pos = 0;
      break;
    }
    pos = nl;
  }
  auto tail = t.substr(pos);
  if (!tail.empty() && tail.front() == '\n') tail.remove_prefix(1);
  return std::string(tail);
}

}  // namespace osmo::testbed
