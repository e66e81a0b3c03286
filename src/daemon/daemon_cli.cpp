// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo daemon` (osmod) and `osmo nodes`, the commands of the daemon part.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <iostream>

#include "base/progress_line.hpp"
#include "cli/commands.hpp"
#include "daemon/config.hpp"
#include "daemon/control_client.hpp"
#include "daemon/daemon.hpp"
#include "daemon/service_manager.hpp"

namespace osmo::cli {
namespace {

void add_daemon(CLI::App& app, GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand("daemon", "Run the node daemon (osmod): gossip, placement, job hosting");
  auto cfg = std::make_shared<daemon::DaemonConfig>();
  auto config_file = std::make_shared<std::string>();
  cmd->add_option("--config", *config_file, "TOML file with any of the options below (command line wins)");
  cmd->add_option("--name", cfg->name, "Node name (default: hostname)");
  cmd->add_option("--listen", cfg->listen, "Address[:port] for gossip (UDP) and peer streams (TCP); default 0.0.0.0:7946");
  cmd->add_option("--advertise", cfg->advertise, "Address[:port] other nodes use to reach this one");
  cmd->add_option("--join", cfg->join, "Address[:port] of a live member to join through (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--secret-file", cfg->secret_file, "Cluster secret: 32 random bytes, mode 0600 (head -c 32 /dev/urandom > FILE)")->capture_default_str();
  cmd->add_option("--state-dir", cfg->state_dir, "Directory for the daemon's state")->capture_default_str();
  cmd->add_option("--load-scope", cfg->load_scope,
                  "Whose load to report: machine, cgroup (this daemon's cgroup and its jobs), or auto "
                  "(cgroup when it has a CPU quota)")
      ->capture_default_str();
  cmd->add_option("--speed", cfg->speed, "CPU speed of this node relative to the cluster's reference CPU (default 1.0)");
  cmd->add_option("--gossip-encryption", cfg->gossip_encryption,
                  "Encrypt gossip datagrams (true); false sends them in clear, still authenticated, for "
                  "tcpdump. Every node must use the same value")
      ->capture_default_str();
  cmd->add_option("--peer-encryption", cfg->peer_encryption,
                  "Encrypt peer streams (true); false leaves them in clear after the authenticated "
                  "handshake, for a trusted network. A stream is encrypted if either end asks")
      ->capture_default_str();
  cmd->add_flag("--balance,!--no-balance", cfg->balance,
                "Send and take automatic migrations (the balancing loop; default on). osmo migrate by hand always works");
  cmd->add_option("--balance-interval-ms", cfg->balance_interval_ms, "How often the balancing loop decides")
      ->capture_default_str();
  cmd->add_option("--metrics-listen", cfg->metrics_listen,
                  "host[:port] for the Prometheus scrape endpoint, GET /metrics (default port 9946; default: none)");
  cmd->add_option("--drain-grace-ms", cfg->drain_grace_ms,
                  "On SIGTERM or osmo leave: how long guest jobs may take to move away before the node leaves")
      ->capture_default_str();
  cmd->callback([cmd, cfg, config_file, &global, exit_code] {
    daemon::DaemonConfig c = *cfg;
    if (!config_file->empty()) {
      std::vector<std::string> on_cli;
      for (const char* key : {"name", "listen", "advertise", "join", "secret-file", "state-dir", "load-scope", "speed",
                               "gossip-encryption", "peer-encryption", "balance", "balance-interval-ms", "drain-grace-ms",
                               "metrics-listen"}) {
        if (cmd->count(std::string("--") + key) > 0) {
          std::string k = key;
          std::replace(k.begin(), k.end(), '-', '_');
          on_cli.push_back(k);
        }
      }
      if (global.socket_explicit) on_cli.push_back("socket");
      if (auto st = daemon::apply_config_file(*config_file, on_cli, &c); !st.ok()) {
        std::cerr << "osmo daemon: " << st.error().str() << "\n";
        *exit_code = 2;
        return;
      }
    }
    if (c.socket.empty()) c.socket = global.socket_path;
    if (!c.log_level.empty()) {
      LogLevel level{};
      if (!Logger::parse_level(c.log_level, &level)) {
        std::cerr << "osmo daemon: unknown log_level '" << c.log_level << "'\n";
        *exit_code = 2;
        return;
      }
      Logger::set_level(level);
    }
    auto resolved = daemon::resolve(c);
    if (!resolved.ok()) {
      std::cerr << "osmo daemon: " << resolved.error().str() << "\n";
      *exit_code = 2;
      return;
    }
    auto d = daemon::Daemon::create(*resolved, c.load_scope, c.speed);
    if (!d.ok()) {
      std::cerr << "osmo daemon: " << d.error().str() << "\n";
      *exit_code = 1;
      return;
    }
    // Readiness for systemd's Type=notify (contrib/systemd/osmod.service): everything is listening.
    if (auto n = daemon::notify_service_manager("READY=1\nSTATUS=serving"); !n.ok())
      std::cerr << "osmo daemon: " << n.error().str() << "\n";
    int status = (*d)->run();
    // Peer and control connections are served on detached threads (a job relay lives as long as
    // its job); returning from main would run static destructors (the log backend) under them.
    // Everything the daemon owns is on disk or in the kernel by now, so leave at once.
    std::fflush(nullptr);
    ::_exit(status);
  });
}

std::string fmt_number(const nlohmann::json& v, int precision) {
  if (v.is_null()) return "-";
  if (v.is_number_float()) return fmt::format("{:.{}f}", v.get<double>(), precision);
  return v.dump();
}

void add_nodes(CLI::App& app, GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand("nodes", "List every known node with its state and load");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print a JSON array");
  cmd->callback([json, &global, exit_code] {
    auto r = daemon::call_local(global.socket_path, {{"op", "nodes"}});
    if (!r.ok()) {
      std::cerr << "osmo nodes: " << r.error().str() << "\n";
      *exit_code = 1;
      return;
    }
    const auto& nodes = (*r)["nodes"];
    if (*json) {
      std::cout << nodes.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:<16} {:<8} {:<22} {:>6} {:>6} {:>10} {:>5} {:>8}\n", "NAME", "STATE", "ADDR",
                             "CPUS", "LOAD", "MEM_FREE", "JOBS", "AGE");
    for (const auto& n : nodes) {
      std::string name = n.value("name", "?") + (n.value("self", false) ? "*" : "");
      std::string state = n.value("state", "?");
      if (state == "alive" && n.value("draining", false)) state = "draining";
      std::string mem = n["mem_free_mb"].is_null() ? "-" : fmt::format("{}M", n["mem_free_mb"].get<std::uint64_t>());
      std::string age = n["age_ms"].is_null() ? "-" : fmt::format("{}ms", n["age_ms"].get<std::int64_t>());
      std::cout << fmt::format("{:<16} {:<8} {:<22} {:>6} {:>6} {:>10} {:>5} {:>8}\n", name,
                               state, n.value("addr", "?"), fmt_number(n["cpus"], 2),
                               fmt_number(n["load"], 2), mem, n.contains("jobs") ? n["jobs"].dump() : "-", age);
    }
  });
}

void add_leave(CLI::App& app, GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand("leave", "Make the local node leave the cluster gracefully and stop its daemon");
  cmd->callback([&global, exit_code] {
    auto client = daemon::ControlClient::connect(global.socket_path);
    auto r = client.ok() ? client->call({{"op", "leave"}}) : Result<nlohmann::json>(client.error());
    if (!r.ok()) {
      std::cerr << "osmo leave: " << r.error().str() << "\n";
      *exit_code = 1;
      return;
    }
    // Wait for the daemon to finish announcing (it closes the socket when it stops).
    std::string pending;
    (void)daemon::recv_line(client->fd(), pending, nullptr, 1);
  });
}

void add_drain(CLI::App& app, GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "drain", "Stop a node taking work and move its guest jobs away (to the best node, or home)");
  auto node = std::make_shared<std::string>();
  auto stop = std::make_shared<bool>(false);
  auto wait_s = std::make_shared<int>(0);
  cmd->add_option("node", *node, "The node to drain (default: this one)");
  cmd->add_flag("--stop", *stop, "End the drain: the node takes work again");
  cmd->add_option("--wait", *wait_s, "Wait up to this many seconds for the node to have no guest left (exit 1 if not)");
  cmd->callback([node, stop, wait_s, &global, exit_code] {
    nlohmann::json req{{"op", "drain"}, {"on", !*stop}};
    if (!node->empty()) req["node"] = *node;
    auto r = daemon::call_local(global.socket_path, req);
    if (!r.ok()) {
      std::cerr << "osmo drain: " << r.error().str() << "\n";
      *exit_code = 1;
      return;
    }
    const std::string name = r->value("node", *node);
    if (*stop) {
      std::cout << name << " takes work again\n";
      return;
    }
    std::uint32_t guests = r->value("guests", 0u);
    {
      ProgressLine progress(fmt::format("osmo drain: {}", name), *wait_s > 0 && progress_wanted(global.quiet));
      for (int waited_ms = 0; guests > 0 && waited_ms < *wait_s * 1000; waited_ms += 100) {
        if (waited_ms % 500 == 0) {
          if (waited_ms > 0) {
            auto again = daemon::call_local(global.socket_path, req);  // idempotent: reports the count
            if (!again.ok()) break;
            guests = again->value("guests", guests);
          }
          progress.phase(fmt::format("{} guest job(s) left to move", guests));
        }
        progress.tick();
        ::usleep(100'000);
      }
    }
    std::cout << name << " is draining: " << guests << " guest job(s) left\n";
    if (*wait_s > 0 && guests > 0) *exit_code = 1;
  });
}

void add_status(CLI::App& app, GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand("status", "Show the local daemon's identity, uptime and message counters (JSON)");
  cmd->callback([&global, exit_code] {
    auto r = daemon::call_local(global.socket_path, {{"op", "status"}});
    if (!r.ok()) {
      std::cerr << "osmo status: " << r.error().str() << "\n";
      *exit_code = 1;
      return;
    }
    r->erase("ok");
    std::cout << r->dump(2) << "\n";
  });
}

}  // namespace

void add_daemon_commands(CLI::App& app, GlobalOptions& global, int* exit_code) {
  add_daemon(app, global, exit_code);
  add_nodes(app, global, exit_code);
  add_leave(app, global, exit_code);
  add_drain(app, global, exit_code);
  add_status(app, global, exit_code);
}

}  // namespace osmo::cli
