// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo testbed ...`: N osmo nodes on this machine, each in its own network namespace and CPU
// cgroup, for trying the cluster and for its integration tests. See docs/testbed.md.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "testbed/testbed.hpp"

namespace osmo::cli {
namespace {

// The instance every testbed subcommand acts on: --instance (before or after the subcommand),
// else $OSMO_TESTBED_INSTANCE, else the default instance.
struct InstanceOption {
  std::string name;
  std::string root() const { return testbed::instance_state_root(name); }
};

constexpr const char* kTestbedHelp =
    "N osmo nodes on this machine. Each node nK is a network namespace osmo-tb-nK with address\n"
    "10.77.0.K on a bridge that lives in a namespace of its own (osmo-tb-br; unreachable from\n"
    "the root namespace), its own daemon, and a cgroup (optionally with a CPU quota). Without\n"
    "root, --loopback runs the daemons on 127.0.0.1 with consecutive ports instead.\n"
    "State: /run/osmo/testbed (root), else $XDG_RUNTIME_DIR/osmo-testbed or "
    "/tmp/osmo-testbed-$UID.\n"
    "Several testbeds run side by side as instances: --instance NAME (or $OSMO_TESTBED_INSTANCE)\n"
    "gives namespaces osmo-tb-NAME-nK, subnet 10.77.S.0/24 (S from the name), its own cgroups and\n"
    "state (the path above followed by -NAME).";

int report(const char* what, const Status& s) {
  if (s.ok()) return 0;
  std::cerr << "osmo testbed " << what << ": " << s.error().str() << "\n";
  return 1;
}

void add_up(CLI::App& tb, std::shared_ptr<InstanceOption> inst, int* exit_code) {
  auto* cmd = tb.add_subcommand("up",
                                "Create the nodes and start their daemons; waits until "
                                "every control socket exists");
  auto opt = std::make_shared<testbed::UpOptions>();
  auto cpus = std::make_shared<double>(0);
  auto timeout_s = std::make_shared<double>(opt->timeout_ms / 1000.0);
  cmd->add_option("-n,--nodes", opt->nodes, "Number of nodes (n1..nN)")
      ->required()
      ->check(CLI::Range(1, testbed::kMaxNodes));
  auto* cpus_opt = cmd->add_option("--cpus-per-node", *cpus,
                                   "CPU quota of each node in CPUs, e.g. 0.5 = half a core "
                                   "(needs root; default: no quota)");
  cmd->add_flag("--loopback", opt->loopback,
                "Run the daemons on 127.0.0.1 (ports base, base+1, ...) without namespaces; "
                "works without root");
  cmd->add_option("--base-port", opt->base_port,
                  "Daemon port (namespaces: every node's; loopback: the first node's)")
      ->capture_default_str();
  cmd->add_option("--timeout", *timeout_s, "Seconds to wait for all control sockets")
      ->capture_default_str();
  cmd->callback([=] {
    testbed::UpOptions o = *opt;
    if (cpus_opt->count() > 0) o.cpus_per_node = *cpus;
    o.timeout_ms = static_cast<int>(*timeout_s * 1000);
    o.instance = inst->name;
    *exit_code = report("up", testbed::testbed_up(inst->root(), o, std::cout));
  });
}

void add_down(CLI::App& tb, std::shared_ptr<InstanceOption> inst, int* exit_code) {
  auto* cmd = tb.add_subcommand(
      "down",
      "Kill every daemon and process of the testbed and remove its namespaces, cgroups "
      "and files, also leftovers of a crashed run; safe to repeat");
  cmd->callback(
      [=] { *exit_code = report("down", testbed::testbed_down(inst->root(), inst->name, std::cout)); });
}

void add_list(CLI::App& tb, std::shared_ptr<InstanceOption> inst, int* exit_code) {
  auto* cmd = tb.add_subcommand("list",
                                "Show each node: address, daemon pid, state "
                                "(running/stopped/paused), CPU quota");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print a JSON array");
  cmd->callback([=] {
    auto nodes = testbed::testbed_list(inst->root());
    if (!nodes.ok()) {
      *exit_code = report("list", nodes.error());
      return;
    }
    if (*json) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& n : *nodes)
        arr.push_back(
            {{"node", n.node.name},
             {"address", n.node.address},
             {"port", n.node.port},
             {"netns", n.node.netns},
             {"bridge_netns", n.node.netns.empty() ? nlohmann::json(nullptr)
                                                   : nlohmann::json(testbed::bridge_netns(inst->name))},
             {"pid", n.pid ? nlohmann::json(*n.pid) : nlohmann::json(nullptr)},
             {"state", testbed::node_state_name(n.state)},
             {"cpu_quota", n.cpu_quota ? nlohmann::json(*n.cpu_quota) : nlohmann::json(nullptr)},
             {"socket", n.socket}});
      std::cout << arr.dump(2) << "\n";
    } else {
      std::cout << fmt::format("{:<6} {:<22} {:>8}  {:<8} {}\n", "NODE", "ADDRESS", "PID", "STATE",
                               "CPU QUOTA");
      for (const auto& n : *nodes)
        std::cout << fmt::format("{:<6} {:<22} {:>8}  {:<8} {}\n", n.node.name,
                                 n.node.address + ":" + std::to_string(n.node.port),
                                 n.pid ? std::to_string(*n.pid) : "-",
                                 testbed::node_state_name(n.state),
                                 n.cpu_quota ? fmt::format("{:g}", *n.cpu_quota) : "none");
    }
    *exit_code = 0;
  });
}

void add_exec(CLI::App& tb, std::shared_ptr<InstanceOption> inst, int* exit_code) {
  auto* cmd = tb.add_subcommand(
      "exec",
      "Run a command inside a node (its namespace and cgroup, with OSMO_SOCKET set to the "
      "node's daemon): osmo testbed exec n2 -- osmo nodes");
  auto node = std::make_shared<std::string>();
  auto argv = std::make_shared<std::vector<std::string>>();
  cmd->add_option("node", *node, "Node name (n1, n2, ...)")->required();
  cmd->add_option("command", *argv, "Command and arguments, after --")->required();
  cmd->callback([=] {
    std::string error;
    int code = testbed::testbed_exec(inst->root(), *node, *argv, &error);
    std::cerr << "osmo testbed exec: " << error << "\n";
    *exit_code = code;
  });
}

void add_node_control(CLI::App& tb, std::shared_ptr<InstanceOption> inst, int* exit_code) {
  auto* stop = tb.add_subcommand("stop", "Kill a node's daemon with SIGKILL (a crash of the node)");
  auto stop_node = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  stop->add_option("node", *stop_node, "Node name")->required();
  stop->add_flag("--all", *all, "Also kill every other process in the node's cgroup");
  stop->callback([=] {
    *exit_code = report("stop", testbed::testbed_stop(inst->root(), *stop_node, *all));
  });

  auto* start = tb.add_subcommand("start",
                                  "Start a stopped node's daemon again (same name, "
                                  "address, state and secret); waits for its socket");
  auto start_node = std::make_shared<std::string>();
  auto timeout_s = std::make_shared<double>(15);
  start->add_option("node", *start_node, "Node name")->required();
  start->add_option("--timeout", *timeout_s, "Seconds to wait for the control socket")
      ->capture_default_str();
  start->callback([=] {
    *exit_code = report("start", testbed::testbed_start(inst->root(), *start_node,
                                                        static_cast<int>(*timeout_s * 1000)));
  });

  auto* pause =
      tb.add_subcommand("pause", "Freeze a node's daemon (SIGSTOP): it looks dead to the others");
  auto pause_node = std::make_shared<std::string>();
  pause->add_option("node", *pause_node, "Node name")->required();
  pause->callback([=] {
    *exit_code = report("pause", testbed::testbed_pause(inst->root(), *pause_node));
  });

  auto* resume = tb.add_subcommand("resume", "Let a paused node's daemon run again (SIGCONT)");
  auto resume_node = std::make_shared<std::string>();
  resume->add_option("node", *resume_node, "Node name")->required();
  resume->callback([=] {
    *exit_code = report("resume", testbed::testbed_resume(inst->root(), *resume_node));
  });
}

}  // namespace

void add_testbed_commands(CLI::App& app, GlobalOptions& /*global*/, int* exit_code) {
  auto* tb = app.add_subcommand("testbed",
                                "A multi-node osmo cluster on this machine (namespaces, "
                                "bridge, CPU-quota cgroups)");
  tb->footer(kTestbedHelp);
  tb->require_subcommand(1);
  tb->fallthrough();  // --instance may also follow the subcommand
  auto inst = std::make_shared<InstanceOption>();
  tb->add_option("--instance", inst->name, "Which testbed: a name for one beside the default (see below)")
      ->envname(testbed::kInstanceEnv)
      ->check(CLI::Validator(
          [](std::string& name) {
            auto st = testbed::check_instance_name(name);
            return st.ok() ? std::string() : st.error().str();
          },
          "NAME"));
  add_up(*tb, inst, exit_code);
  add_down(*tb, inst, exit_code);
  add_list(*tb, inst, exit_code);
  add_exec(*tb, inst, exit_code);
  add_node_control(*tb, inst, exit_code);
}

}  // namespace osmo::cli
