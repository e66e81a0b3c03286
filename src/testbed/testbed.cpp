// SPDX-License-Identifier: GPL-2.0-or-later
// The testbed's operations (see testbed.hpp).
#include "testbed/testbed.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "base/unique_fd.hpp"
#include "platform/linux/cgroup.hpp"
#include "platform/linux/netns.hpp"
#include "platform/linux/sysfs_io.hpp"
#include "testbed/cgroups.hpp"
#include "testbed/network.hpp"

namespace osmo::testbed {
namespace {

using namespace std::chrono_literals;

constexpr auto kCgroupRemoveTimeout = 5000ms;
constexpr auto kSignalWait = 3000ms;

bool is_root() {
  return ::geteuid() == 0;
}

Status make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return make_error("create directory {}: {}", path, ec.message());
  return ok_status();
}

Status write_secret(const std::string& path) {
  std::uint8_t key[kSecretBytes];
  if (::getrandom(key, sizeof key, 0) != static_cast<ssize_t>(sizeof key))
    return errno_error("getrandom for the cluster secret");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return errno_error("create cluster secret {}", path);
  if (::fchmod(fd.get(), 0600) != 0) return errno_error("chmod 600 {}", path);
  if (::write(fd.get(), key, sizeof key) != static_cast<ssize_t>(sizeof key))
    return errno_error("write cluster secret {}", path);
  return ok_status();
}

// In loopback mode the nodes share 127.0.0.1 with everything else on the machine: a port in use
// is refused up front instead of as a daemon failing to bind.
Status check_loopback_port_free(std::uint16_t port) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    UniqueFd s(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (!s) return errno_error("socket to check port {}", port);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      return errno_error("127.0.0.1:{} ({}) cannot be used; choose another --base-port", port,
                         type == SOCK_STREAM ? "TCP" : "UDP");
  }
  return ok_status();
}

Result<const NodeRecord*> find_node(const TestbedState& s, const std::string& name) {
  const NodeRecord* n = s.find(name);
  if (n == nullptr)
    return make_error("no node '{}' in this testbed (nodes: n1..n{})", name, s.nodes.size());
  return n;
}

// Polls until the node's daemon is in `want` (bounded).
Status wait_node_state(const std::string& root, const NodeRecord& node, NodeState want) {
  auto deadline = std::chrono::steady_clock::now() + kSignalWait;
  while (inspect_node(root, node).state != want) {
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error("node {}: daemon did not become {} within {} ms", node.name,
                        node_state_name(want), kSignalWait.count());
    std::this_thread::sleep_for(10ms);
  }
  return ok_status();
}

Status make_testbed(const std::string& root, const UpOptions& o, const TestbedState& s,
                    const std::optional<platform::CgroupLayout>& layout);

}  // namespace

Result<TestbedState> testbed_state(const std::string& root) {
  std::string path = state_file(root);
  if (!platform::path_exists(path))
    return make_error("no testbed is up (no {}); start one with `osmo testbed up`", path);
  return load_state(path);
}

Status testbed_up(const std::string& root, const UpOptions& o, std::ostream& out) {
  if (o.nodes < 1 || o.nodes > kMaxNodes)
    return make_error("-n {}: a testbed has 1 to {} nodes", o.nodes, kMaxNodes);
  if (!o.loopback && !is_root())
    return make_error(
        "network namespaces need root; run as root, or use --loopback to run the "
        "nodes on 127.0.0.1 without namespaces");
  if (o.cpus_per_node) {
    if (!(*o.cpus_per_node > 0))
      return make_error("--cpus-per-node {}: must be > 0", *o.cpus_per_node);
    if (!is_root()) return make_error("--cpus-per-node needs root (it creates cgroups)");
  }
  if (o.base_port == 0 || (o.loopback && o.base_port + o.nodes - 1 > 65535))
    return make_error("--base-port {}: ports {}..{} do not fit", o.base_port, o.base_port,
                      o.base_port + o.nodes - 1);
  if (platform::path_exists(state_file(root)))
    return make_error("a testbed is already up (state in {}); run `osmo testbed down` first", root);
  if (platform::path_exists(root))
    return make_error("{} is left over from an earlier testbed; run `osmo testbed down` first",
                      root);
  if (o.loopback) {
    for (int k = 1; k <= o.nodes; ++k)
      OSMO_TRY(check_loopback_port_free(node_port(k, true, o.base_port)));
  }
  if (!o.instance.empty()) OSMO_TRY(check_instance_name(o.instance));
  const std::string down_hint = o.instance.empty() ? "`osmo testbed down`"
                                                   : fmt::format("`osmo testbed --instance {} down`", o.instance);
  if (!o.loopback) {
    OSMO_ASSIGN_OR_RETURN(auto candidates, platform::list_netns(netns_prefix(o.instance)));
    for (const auto& n : candidates)
      if (is_instance_netns(o.instance, n))
        return make_error("network namespace {} is left over from an earlier testbed; run {} first", n, down_hint);
  }

  if (is_root()) {
    // A node cgroup left by a crashed run would be adopted with whatever still runs in it.
    OSMO_ASSIGN_OR_RETURN(auto cg_layout, platform::CgroupLayout::detect());
    for (const auto& parent : leftover_cgroup_parents(cg_layout, o.instance, {})) {
      if (platform::Cgroup::open(cg_layout, parent).exists())
        return make_error("cgroup {} is left over from an earlier testbed; run {} first",
                          parent.distinct().front(), down_hint);
    }
  }

  TestbedState s;
  s.instance = o.instance;
  s.subnet = instance_subnet(o.instance);
  s.loopback = o.loopback;
  s.base_port = o.base_port;
  s.cpus_per_node = o.cpus_per_node;
  if (const char* d = std::getenv(kDaemonOverrideEnv); d != nullptr) s.daemon_override = d;
  std::optional<platform::CgroupLayout> layout;
  if (is_root()) {
    OSMO_ASSIGN_OR_RETURN(layout, platform::CgroupLayout::detect());
    OSMO_ASSIGN_OR_RETURN(s.cgroup_parent, testbed_cgroup_parent(*layout, o.instance));
  }
  for (int k = 1; k <= o.nodes; ++k) {
    NodeRecord n;
    n.name = node_name(k);
    n.address = node_address(s.subnet, k, o.loopback);
    n.port = node_port(k, o.loopback, o.base_port);
    if (!o.loopback) n.netns = node_netns(o.instance, k);
    if (layout) n.cgroup = child_cgroup(s.cgroup_parent, n.name);
    s.nodes.push_back(std::move(n));
  }

  OSMO_TRY(make_dirs(root));
  // From here on, a failure takes down whatever was made, and says so after the error itself.
  Status made = make_testbed(root, o, s, layout);
  if (!made.ok()) {
    std::ostringstream undo;
    Status down = testbed_down(root, o.instance, undo);
    Error e = made.take_error();
    e.message += "\n(undone: " + std::string(platform::trim(undo.str())) +
                 (down.ok() ? ")" : "; " + down.error().str() + ")");
    return e;
  }
  out << "testbed up" << (o.instance.empty() ? "" : " (instance " + o.instance + ")") << ": " << o.nodes
      << " node(s), "
      << (o.loopback ? "loopback (127.0.0.1)" : fmt::format("namespaces on 10.77.{}.0/24", s.subnet))
      << (o.cpus_per_node ? fmt::format(", {:g} CPU per node", *o.cpus_per_node) : std::string())
      << "; state in " << root << "\n";
  return ok_status();
}

namespace {

// The creating half of testbed_up. The record is written first so that even a crash of this
// command leaves enough for `down`.
Status make_testbed(const std::string& root, const UpOptions& o, const TestbedState& s,
                    const std::optional<platform::CgroupLayout>& layout) {
  OSMO_TRY(save_state(state_file(root), s));
  OSMO_TRY(write_secret(secret_file(root)));
  if (!o.loopback) {
    OSMO_TRY(create_bridge_network(o.instance));
    for (int k = 1; k <= o.nodes; ++k) OSMO_TRY(add_node_network(o.instance, s.subnet, k));
  }
  if (layout) {
    for (const auto& n : s.nodes) {
      auto cg = platform::Cgroup::create(*layout, n.cgroup, o.cpus_per_node);
      if (!cg.ok()) return make_error("node {}: {}", n.name, cg.error().str());
    }
  }
  std::vector<std::string> names;
  for (const auto& n : s.nodes) {
    OSMO_TRY(start_node_daemon(root, s, n));
    names.push_back(n.name);
  }
  return wait_for_control_sockets(root, s, names, o.timeout_ms);
}

}  // namespace

Status testbed_down(const std::string& root, std::string_view instance, std::ostream& out) {
  std::optional<Error> first_error;
  auto note = [&](Status s) {
    if (!s.ok() && !first_error) first_error = s.take_error();
  };
  int daemons = 0, cgroups = 0, processes = 0;
  std::vector<std::string> namespaces;

  // 1. Daemons by pid file (identity-checked), from the record and from any node directory.
  std::optional<TestbedState> state;
  if (platform::path_exists(state_file(root))) {
    auto s = load_state(state_file(root));
    if (s.ok()) {
      state = std::move(s).value();
    } else {
      out << "testbed down: ignoring a damaged record (" << s.error().str()
          << "); scanning instead\n";
    }
  }
  std::vector<NodeRecord> pid_owners = state ? state->nodes : std::vector<NodeRecord>{};
  if (platform::is_directory(root)) {
    if (auto entries = platform::list_directory(root, /*only_dirs=*/true); entries.ok()) {
      for (const auto& e : *entries)
        if (parse_node_name(e).ok() && (!state || state->find(e) == nullptr))
          pid_owners.push_back(NodeRecord{e, "", 0, "", {}});
    }
  }
  for (const auto& n : pid_owners) {
    if (inspect_node(root, n).state == NodeState::kStopped) continue;
    Status s = kill_node_daemon(root, n);
    if (s.ok()) ++daemons;
    note(std::move(s));
  }

  // 2. Cgroups: everything inside is ours (only processes in these cgroups are killed).
  if (is_root()) {
    auto layout = platform::CgroupLayout::detect();
    if (layout.ok()) {
      // One node's cgroup spans several hierarchies on v1, and the candidate parents overlap:
      // count node names, not directories; an empty parent (a crash between its mkdir and the
      // nodes') counts as one.
      std::set<std::string> node_cgroups;
      bool any_parent = false;
      for (const auto& parent : leftover_cgroup_parents(
               *layout, instance, state ? state->cgroup_parent : platform::CgroupDirs{})) {
        auto cg = platform::Cgroup::open(*layout, parent);
        if (!cg.exists()) continue;
        any_parent = true;
        for (const auto& d : parent.distinct()) {
          if (auto kids = platform::list_directory(d, /*only_dirs=*/true); kids.ok())
            node_cgroups.insert(kids->begin(), kids->end());
        }
        if (auto pids = cg.processes(); pids.ok()) processes += static_cast<int>(pids->size());
        note(cg.remove(kCgroupRemoveTimeout));
      }
      cgroups = !node_cgroups.empty() ? static_cast<int>(node_cgroups.size()) : any_parent ? 1 : 0;
    } else {
      note(layout.take_error());
    }
    // 3. Namespaces by name (the instance's only).
    note(remove_testbed_networks(instance, &namespaces));
  }

  // 4. Files. Only once nothing can write into them any more.
  bool had_files = platform::is_directory(root);
  if (!first_error && had_files) {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
    if (ec) note(make_error("remove {}: {}", root, ec.message()));
  }

  if (daemons == 0 && cgroups == 0 && processes == 0 && namespaces.empty() && !had_files) {
    out << "testbed down: nothing to remove\n";
  } else {
    std::string ns_list;
    for (const auto& n : namespaces) ns_list += (ns_list.empty() ? "" : ", ") + n;
    out << fmt::format(
        "testbed down: killed {} daemon(s) and {} other process(es), removed {} cgroup(s), "
        "{} namespace(s){}{}\n",
        daemons, processes, cgroups, namespaces.size(), ns_list.empty() ? "" : " (" + ns_list + ")",
        had_files && !first_error ? ", and " + root : "");
  }
  if (first_error) return *first_error;
  return ok_status();
}

Result<std::vector<NodeStatus>> testbed_list(const std::string& root) {
  OSMO_ASSIGN_OR_RETURN(TestbedState s, testbed_state(root));
  std::optional<platform::CgroupLayout> layout;
  if (auto l = platform::CgroupLayout::detect(); l.ok()) layout = std::move(l).value();
  std::vector<NodeStatus> out;
  for (const auto& n : s.nodes) {
    NodeStatus st;
    st.node = n;
    NodeProcess p = inspect_node(root, n);
    st.state = p.state;
    if (p.id) st.pid = p.id->pid;
    st.socket = node_paths(root, n.name).socket;
    if (layout && !n.cgroup.empty()) {
      auto q = platform::Cgroup::open(*layout, n.cgroup).cpu_quota();
      if (q.ok()) st.cpu_quota = *q;
    }
    out.push_back(std::move(st));
  }
  return out;
}

Status testbed_stop(const std::string& root, const std::string& name, bool whole_node) {
  OSMO_ASSIGN_OR_RETURN(TestbedState s, testbed_state(root));
  OSMO_ASSIGN_OR_RETURN(const NodeRecord* n, find_node(s, name));
  OSMO_TRY(kill_node_daemon(root, *n));
  if (whole_node && !n->cgroup.empty()) {
    OSMO_ASSIGN_OR_RETURN(auto layout, platform::CgroupLayout::detect());
    OSMO_TRY(platform::Cgroup::open(layout, n->cgroup).signal_all(SIGKILL));
  }
  return ok_status();
}

Status testbed_start(const std::string& root, const std::string& name, int timeout_ms) {
  OSMO_ASSIGN_OR_RETURN(TestbedState s, testbed_state(root));
  OSMO_ASSIGN_OR_RETURN(const NodeRecord* n, find_node(s, name));
  NodeProcess p = inspect_node(root, *n);
  if (p.state != NodeState::kStopped)
    return make_error("node {} is already {} (pid {})", name, node_state_name(p.state), p.id->pid);
  OSMO_TRY(start_node_daemon(root, s, *n));
  return wait_for_control_sockets(root, s, {name}, timeout_ms);
}

Status testbed_pause(const std::string& root, const std::string& name) {
  OSMO_ASSIGN_OR_RETURN(TestbedState s, testbed_state(root));
  OSMO_ASSIGN_OR_RETURN(const NodeRecord* n, find_node(s, name));
  NodeProcess p = inspect_node(root, *n);
  if (p.state != NodeState::kRunning)
    return make_error("node {} is {}, not running", name, node_state_name(p.state));
  OSMO_TRY(platform::signal_process(*p.id, SIGSTOP));
  return wait_node_state(root, *n, NodeState::kPaused);
}

Status testbed_resume(const std::string& root, const std::string& name) {
  OSMO_ASSIGN_OR_RETURN(TestbedState s, testbed_state(root));
  OSMO_ASSIGN_OR_RETURN(const NodeRecord* n, find_node(s, name));
  NodeProcess p = inspect_node(root, *n);
  if (p.state != NodeState::kPaused)
    return make_error("node {} is {}, not paused", name, node_state_name(p.state));
  OSMO_TRY(platform::signal_process(*p.id, SIGCONT));
  return wait_node_state(root, *n, NodeState::kRunning);
}

int testbed_exec(const std::string& root, const std::string& name,
                 const std::vector<std::string>& argv, std::string* error) {
  if (argv.empty()) {
    *error = "no command given (osmo testbed exec NODE -- CMD [ARGS...])";
    return 2;
  }
  auto s = testbed_state(root);
  if (!s.ok()) {
    *error = s.error().str();
    return 2;
  }
  auto n = find_node(*s, name);
  if (!n.ok()) {
    *error = n.error().str();
    return 2;
  }
  const NodeRecord& node = **n;
  if (!node.cgroup.empty()) {
    auto layout = platform::CgroupLayout::detect();
    Status joined = layout.ok()
                        ? platform::Cgroup::open(*layout, node.cgroup).add_process(::getpid())
                        : Status(layout.take_error());
    if (!joined.ok()) {
      *error = fmt::format("node {}: {}", name, joined.error().str());
      return 126;
    }
  }
  if (!node.netns.empty()) {
    auto fd = platform::open_netns(node.netns);
    Status entered =
        fd.ok() ? platform::enter_netns(fd->get(), node.netns) : Status(fd.take_error());
    if (!entered.ok()) {
      *error = fmt::format("node {}: {}", name, entered.error().str());
      return 126;
    }
  }
  ::setenv("OSMO_SOCKET", node_paths(root, name).socket.c_str(), 1);
  ::setenv("OSMO_TESTBED_NODE", name.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  int err = errno;
  *error = fmt::format("{}: {}", argv[0], err == ENOENT ? "command not found" : std::strerror(err));
  return err == ENOENT ? 127 : 126;
}

}  // namespace osmo::testbed
