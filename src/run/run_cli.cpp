// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo run`, `osmo ps`, `osmo kill`, and the hidden `osmo __job-shepherd` the daemon execs for
// each job. Also registers the daemon plugin (run_service.hpp) for every `osmo` invocation.
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <functional>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "daemon/control_client.hpp"
#include "base/log.hpp"
#include "daemon/services.hpp"
#include "run/anchor.hpp"
#include "run/exit_status.hpp"
#include "run/job_spec.hpp"
#include "run/run_cli.hpp"
#include "run/run_service.hpp"
#include "run/shepherd.hpp"

namespace osmo::cli {

namespace {

using nlohmann::json;

const char* const kRunFooter = R"(
PROG runs with your uid, gid, groups, environment, working directory, umask and resource limits
on whichever node runs it, in a PID/mount/time namespace of its own. stdin, stdout and stderr,
Ctrl-C (SIGINT), SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 and Ctrl-Z/fg are relayed. Started from a
terminal, PROG gets a terminal of its own on its node for the streams that are terminals here
(your settings and window size; your terminal is raw meanwhile and restored after): -t forces
one, -T refuses one.

Exit status: PROG's own; 128+N if PROG was killed by signal N; and
  126  PROG could not be executed (e.g. permission denied)
  127  PROG was not found
  249  the local osmo daemon could not be reached or refused the request
  250  no node can take PROG (--node names an unknown, dead or unreachable node, or placement
       found no node able to run it)
  251  the target node refused the job (bad cluster secret, unknown user, missing working
       directory, namespace or credential setup failed)
  252  the node running PROG died, or the connection to it broke, while PROG ran
  253  protocol error on the relay stream
Each osmo failure prints one line on stderr. See docs/run.md.)";

int signal_from_name(std::string s) {
  if (s.empty()) return -1;
  if (std::all_of(s.begin(), s.end(), ::isdigit)) {
    const int n = std::atoi(s.c_str());
    return n >= 0 && n < NSIG ? n : -1;
  }
  for (auto& c : s) c = static_cast<char>(::toupper(static_cast<unsigned char>(c)));
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  for (int i = 1; i < NSIG; ++i) {
    const char* abbrev = ::sigabbrev_np(i);
    if (abbrev != nullptr && s == abbrev) return i;
  }
  return -1;
}

struct RunOpts {
  std::string node;
  bool home = false;
  bool no_migrate = false;
  bool no_spread = false;  // the programs the job starts stay on its node (docs/spread.md)
  bool verbose = false;
  bool force_tty = false;  // -t: a pty even if none of our stdio is a terminal
  bool no_tty = false;     // -T: never a pty
};

// The job's terminal, as `ssh -t` decides it: the job gets a pty when one of our stdin, stdout,
// stderr is a terminal (or with -t), and exactly those streams use it (all three with -t and no
// terminal); the others stay pipes. Fills the anchor's side of it in `opt`.
Result<std::optional<run::TtySpec>> decide_tty(const RunOpts& o, run::AnchorOptions& opt) {
  const bool is_tty[3] = {::isatty(0) == 1, ::isatty(1) == 1, ::isatty(2) == 1};
  if (o.no_tty || (!o.force_tty && !is_tty[0] && !is_tty[1] && !is_tty[2])) return std::optional<run::TtySpec>();
  int term = -1;
  for (int fd : {0, 1, 2})
    if (term < 0 && is_tty[fd]) term = fd;
  run::TtySpec t;
  if (term >= 0) {
    OSMO_ASSIGN_OR_RETURN(t, run::capture_tty(term));
  }
  t.in = is_tty[0];
  t.out = is_tty[1];
  t.err = is_tty[2];
  if (!t.in && !t.out && !t.err) t.in = t.out = t.err = true;
  opt.term_fd = term;
  opt.tty_out_fd = is_tty[1] ? 1 : is_tty[2] ? 2 : term;
  opt.raw_fd = is_tty[0] ? 0 : -1;
  opt.raw_output = t.out;
  return std::optional<run::TtySpec>(t);
}

// `osmo run` once its options are known: the same for the CLI11 path and the fast path.
int run_command(const RunOpts& o, const std::string& socket_path, std::vector<std::string> argv) {
  if (!argv.empty() && argv.front() == "--") argv.erase(argv.begin());
  if (argv.empty()) {
    std::cerr << "osmo run: no program given (usage: osmo run [options] [--] PROG [ARGS...])\n";
    return run::kExitUsage;
  }
  if (o.force_tty && o.no_tty) {
    std::cerr << "osmo run: -t (force a terminal) and -T (no terminal) exclude each other\n";
    return run::kExitUsage;
  }
  auto spec = run::capture_local_spec(argv);
  if (!spec.ok()) {
    std::cerr << "osmo run: " << spec.error().str() << "\n";
    return run::kExitUsage;
  }
  run::AnchorOptions opt;
  auto tty = decide_tty(o, opt);
  if (!tty.ok()) {
    std::cerr << "osmo run: " << tty.error().str() << "\n";
    return run::kExitUsage;
  }
  spec->tty = *tty;
  json req = run::to_json(*spec);
  for (const char* k : {"id", "home", "node", "uid", "gid", "groups", "state_dir", "attach_token"}) req.erase(k);
  req["op"] = "run.start";
  req["anchor"] = true;  // this connection stays open: moved jobs reattach through it
  if (!o.node.empty()) req["node"] = o.node;
  if (o.home) req["at_home"] = true;
  req["no_migrate"] = o.no_migrate;
  if (o.no_spread) req["no_spread"] = true;
  auto client = daemon::ControlClient::connect(socket_path);
  if (!client.ok()) {
    std::cerr << "osmo run: " << client.error().str() << "\n";
    return run::kExitLocalDaemon;
  }
  std::vector<UniqueFd> fds;
  auto r = client->call(req, {}, &fds);
  if (!r.ok()) {
    std::cerr << "osmo run: " << r.error().str() << "\n";
    return run::kExitLocalDaemon;
  }
  if (r->contains("failed")) {
    std::cerr << "osmo run: " << r->value("message", "the job could not be started") << "\n";
    return r->value("failed", "") == "no_node" ? run::kExitNoNode : run::kExitRefused;
  }
  if (fds.size() != 1) {
    std::cerr << "osmo run: the daemon answered without a relay stream\n";
    return run::kExitLocalDaemon;
  }
  // The connection is now the job's anchor registration: the daemon passes on it the streams of
  // shepherds that take the job over after a move. If the daemon restarts, register again.
  UniqueFd registration = client->release();
  opt.verbose = o.verbose;
  opt.node = r->value("node", "");
  opt.control_fd = registration.get();
  const json again{{"op", "run.anchor"}, {"id", r->value("id", "")}, {"attach_token", r->value("attach_token", "")}};
  opt.reregister = [socket_path, again]() -> UniqueFd {
    auto c = daemon::ControlClient::connect(socket_path);
    if (!c.ok() || !c->call(again).ok()) return UniqueFd();
    return c->release();
  };
  return run::run_anchor(std::move(fds[0]), opt);
}

void add_run(CLI::App& app, GlobalOptions& global, int* exit_code) {
  auto o = std::make_shared<RunOpts>();
  auto* cmd = app.add_subcommand("run", "Run a program on the best node of the cluster, as if here");
  cmd->footer(std::string("\nUsage: osmo run [--node NAME | --home] [--no-migrate] [--no-spread] [-t | -T] [-v] [--] PROG [ARGS...]\n") +
              kRunFooter);
  auto* node = cmd->add_option("--node", o->node, "Run on this node instead of letting the cluster choose");
  cmd->add_flag("--home", o->home, "Run on this (the home) node")->excludes(node);
  cmd->add_flag("--no-migrate", o->no_migrate, "Pin the job where it starts: the balancer never moves it, osmo migrate only with --force");
  cmd->add_flag("--no-spread", o->no_spread, "Keep every program the job starts on the job's node (no placement at exec)");
  cmd->add_flag("-v,--verbose", o->verbose, "Say where the job runs and how it ended, on stderr");
  auto* force = cmd->add_flag("-t,--tty", o->force_tty, "Give the job a terminal even if none of stdin/stdout/stderr is one");
  cmd->add_flag("-T,--no-tty", o->no_tty, "Never give the job a terminal (pipes only)")->excludes(force);
  cmd->prefix_command();
  cmd->fallthrough(false);  // PROG and its arguments stay ours, not the parent's
  cmd->callback([cmd, o, &global, exit_code] {
    *exit_code = run_command(*o, global.socket_path, cmd->remaining());
  });
}

void add_ps(CLI::App& app, GlobalOptions& global, int* exit_code) {
  auto json_out = std::make_shared<bool>(false);
  auto node = std::make_shared<std::string>();
  auto tree = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("ps", "List the jobs of the whole cluster (or of one node)");
  cmd->add_flag("--json", *json_out, "Print a JSON array of jobs");
  cmd->add_option("--node", *node, "Only the jobs running on this node");
  cmd->add_flag("--tree", *tree, "Show sub-jobs (programs a job started elsewhere, docs/spread.md) under their job");
  cmd->callback([json_out, node, tree, &global, exit_code] {
    json req{{"op", "jobs.list"}};
    if (!node->empty()) req["node"] = *node;
    auto r = daemon::call_local(global.socket_path, req);
    if (!r.ok()) {
      std::cerr << "osmo ps: " << r.error().str() << "\n";
      *exit_code = 1;
      return;
    }
    json jobs = (*r)["jobs"];
    std::sort(jobs.begin(), jobs.end(), [](const json& a, const json& b) {
      return a.value("started_unix_ms", 0ll) < b.value("started_unix_ms", 0ll);
    });
    for (const auto& e : (*r)["errors"]) std::cerr << "osmo ps: " << e.get<std::string>() << "\n";
    if (*json_out) {
      std::cout << jobs.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:<12} {:<10} {:<10} {:<10} {:>8} {:<9} {:>8} {:>8} {:>3} {:<4} {:<7} {}\n", "ID",
                             "OWNER", "HOME", "NODE", "PID", "STATE", "CPU_S", "RSS_MB", "MIG", "MOVE", "TTY", "CMD");
    // --tree: each job followed by its sub-jobs, depth-first, CMD indented by depth.
    std::vector<std::pair<const json*, int>> order;
    if (*tree) {
      std::set<std::string> ids;
      for (const auto& j : jobs) ids.insert(j.value("id", ""));
      std::function<void(const std::string&, int)> add = [&](const std::string& parent, int depth) {
        for (const auto& j : jobs) {
          const std::string p = j.contains("parent") && j["parent"].is_string() ? j["parent"].get<std::string>() : "";
          // Roots: no parent, or a parent not in the listing (its node did not answer).
          const bool root = p.empty() || !ids.contains(p);
          if ((depth == 0 && root) || (depth > 0 && p == parent)) {
            order.emplace_back(&j, depth);
            if (depth < 32) add(j.value("id", ""), depth + 1);
          }
        }
      };
      add("", 0);
    } else {
      for (const auto& j : jobs) order.emplace_back(&j, 0);
    }
    for (const auto& [jp, depth] : order) {
      const json& j = *jp;
      // MOVE: can `osmo migrate` move it now (the reason is in --json's why_not)?
      const char* move = !j.contains("movable") ? "?" : j.value("movable", false) ? "yes" : "no";
      // TTY: the job's terminal on its node (an interactive job), "-" for none.
      const std::string tty = j.contains("tty") && j["tty"].is_string() ? j["tty"].get<std::string>() : "-";
      std::cout << fmt::format("{:<12} {:<10} {:<10} {:<10} {:>8} {:<9} {:>8.2f} {:>8.1f} {:>3} {:<4} {:<7} {}\n",
                               j.value("id", ""), j.value("owner", ""), j.value("home", ""),
                               j.value("node", ""), j.value("pid", 0), j.value("state", ""),
                               j.value("cpu_s", 0.0), j.value("rss_mb", 0.0), j.value("migrations", 0), move,
                               tty, std::string(static_cast<std::size_t>(2 * depth), ' ') + (depth > 0 ? "\\_ " : "") + j.value("cmd", ""));
    }
  });
}

void add_kill(CLI::App& app, GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand("kill", "Send a signal (default SIGTERM) to a job wherever it runs");
  cmd->footer("\nUsage: osmo kill [-SIG | -s SIG] ID\n  SIG: a number or a name (-9, -KILL, -s INT); ID: a job id from osmo ps, or a unique prefix.");
  cmd->prefix_command();
  cmd->fallthrough(false);  // PROG and its arguments stay ours, not the parent's
  cmd->callback([cmd, &global, exit_code] {
    std::vector<std::string> args = cmd->remaining();
    int sig = SIGTERM;
    std::string id;
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      std::string name;
      if ((a == "-s" || a == "--signal") && i + 1 < args.size()) {
        name = args[++i];
      } else if (a.size() > 1 && a[0] == '-' && a != "--") {
        name = a.substr(1);
      } else if (a == "--") {
        continue;
      } else if (id.empty()) {
        id = a;
        continue;
      } else {
        std::cerr << "osmo kill: more than one job id given ('" << id << "', '" << a << "')\n";
        *exit_code = 2;
        return;
      }
      sig = signal_from_name(name);
      if (sig < 0) {
        std::cerr << "osmo kill: unknown signal '" << name << "'\n";
        *exit_code = 2;
        return;
      }
    }
    if (id.empty()) {
      std::cerr << "osmo kill: no job id given (see osmo ps)\n";
      *exit_code = 2;
      return;
    }
    auto r = daemon::call_local(global.socket_path, {{"op", "jobs.kill"}, {"id", id}, {"signal", sig}});
    if (!r.ok()) {
      std::cerr << "osmo kill: " << r.error().str() << "\n";
      *exit_code = 1;
    }
  });
}

void add_shepherd(CLI::App& app, int* exit_code) {
  auto fds = std::make_shared<std::pair<int, int>>(-1, -1);
  auto* cmd = app.add_subcommand("__job-shepherd", "internal: the per-job process the daemon starts");
  cmd->group("");  // hidden from help
  cmd->add_option("stream_fd", fds->first)->required();
  cmd->add_option("spec_fd", fds->second)->required();
  cmd->callback([fds, exit_code] { *exit_code = run::shepherd_entry(fds->first, fds->second); });
}

}  // namespace

std::optional<int> run_fast_path(int argc, char** argv) {
  // Global options first, as CLI11 accepts them before the subcommand.
  std::string socket_path, log_level;
  bool have_level = false;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view a = argv[i];
    if ((a == "--socket" || a == "--log-level") && i + 1 < argc) {
      (a == "--socket" ? socket_path : log_level) = argv[++i];
      have_level = have_level || a == "--log-level";
    } else if (a.rfind("--socket=", 0) == 0) {
      socket_path = a.substr(9);
    } else if (a.rfind("--log-level=", 0) == 0) {
      log_level = a.substr(12);
      have_level = true;
    } else {
      break;
    }
  }
  if (i >= argc || std::string_view(argv[i]) != "run") return std::nullopt;
  RunOpts o;
  bool node_given = false;
  for (++i; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a.front() != '-') break;  // PROG
    if (a == "--node" && i + 1 < argc) {
      o.node = argv[++i];
      node_given = true;
    } else if (a.rfind("--node=", 0) == 0) {
      o.node = a.substr(7);
      node_given = true;
    } else if (a == "--home") {
      o.home = true;
    } else if (a == "--no-migrate") {
      o.no_migrate = true;
    } else if (a == "--no-spread") {
      o.no_spread = true;
    } else if (a == "-v" || a == "--verbose") {
      o.verbose = true;
    } else if (a == "-t" || a == "--tty") {
      o.force_tty = true;
    } else if (a == "-T" || a == "--no-tty") {
      o.no_tty = true;
    } else {
      return std::nullopt;  // --help, a typo, a combined flag: CLI11 answers those
    }
  }
  // Whatever CLI11 would reject or explain: let it.
  if ((node_given && o.home) || (node_given && o.node.empty()) || (o.force_tty && o.no_tty) || i >= argc)
    return std::nullopt;
  LogLevel level{};
  if (have_level && !Logger::parse_level(log_level, &level)) return std::nullopt;
  if (have_level) Logger::set_level(level);
  if (socket_path.empty()) {  // as main() resolves it: --socket, else $OSMO_SOCKET, else default
    const char* env = std::getenv("OSMO_SOCKET");
    socket_path = env != nullptr && *env != '\0' ? env : kDefaultControlSocket;
  }
  return run_command(o, socket_path, std::vector<std::string>(argv + i, argv + argc));
}

void add_run_commands(CLI::App& app, GlobalOptions& global, int* exit_code) {
  daemon::register_plugin(run::install_run_service);
  add_run(app, global, exit_code);
  add_ps(app, global, exit_code);
  add_kill(app, global, exit_code);
  add_shepherd(app, exit_code);
}

}  // namespace osmo::cli
