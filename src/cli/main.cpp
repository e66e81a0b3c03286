// SPDX-License-Identifier: GPL-2.0-or-later
// The `osmo` binary: one executable for the daemon and every tool. Subcommands are registered by
// the part of the design they belong to (see commands.hpp).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>
#include <iostream>

#include "base/log.hpp"
#include "cli/commands.hpp"
#include "run/run_cli.hpp"
#include "spread/deputy.hpp"
#include "base/version.hpp"

namespace {

// `osmo run [OPTIONS] -- PROG ARGS...`: CLI11 2.1 hands everything after a subcommand's "--" back
// to the parent command when the subcommand has no positional options, and `run` must have none:
// it is a prefix command, so that PROG's own options (`python3 -v`) are never taken for osmo's.
// So the separator is removed here, before parsing, when it directly follows run's own options;
// PROG then starts the prefix as it does without "--".
std::vector<std::string> drop_run_separator(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // The subcommand is the first word that is neither a global option nor its value.
  auto it = args.begin();
  while (it != args.end() && !it->empty() && it->front() == '-') {
    bool takes_value = *it == "--socket" || *it == "--log-level";
    ++it;
    if (takes_value && it != args.end()) ++it;
  }
  if (it == args.end() || *it != "run") return args;
  for (++it; it != args.end(); ++it) {
    if (*it == "--") {
      args.erase(it);
      break;
    }
    if (*it == "--node") {  // the only option of run that takes a value
      if (++it == args.end()) break;
      continue;
    }
    if (it->empty() || it->front() != '-') break;  // PROG: nothing of ours follows
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  // `osmo run` is latency-critical: plain invocations skip building the parser for every command.
  if (const auto code = osmo::cli::run_fast_path(argc, argv)) return *code;
  // A spread deputy (the exec of a job's process, redirected): no parser, as fast as `osmo run`.
  if (argc > 1 && std::string_view(argv[1]) == "__spread-deputy") return osmo::spread::deputy_main(argc, argv);

  CLI::App app{"osmo: a group of Linux machines that behaves like one big multiprocessor", "osmo"};
  app.set_version_flag("--version", std::string("osmo ") + osmo::kVersion);
  app.require_subcommand(1);
  app.fallthrough();

  osmo::cli::GlobalOptions global;
  app.add_option("--socket", global.socket_path,
                 "Control socket of the local daemon (default: $OSMO_SOCKET, else " +
                     std::string(osmo::cli::kDefaultControlSocket) + ")");
  app.add_option("--log-level", global.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  app.add_flag("-q,--quiet", global.quiet,
               "No progress line on the terminal (checkpoint, restore, migrate, drain); results and errors still print");

  // Resolve global options before any subcommand callback runs.
  app.parse_complete_callback([&] {
    const char* env = std::getenv("OSMO_SOCKET");
    if (!global.socket_path.empty()) {
      global.socket_explicit = true;
    } else if (env != nullptr && *env != '\0') {
      global.socket_path = env;
      global.socket_explicit = true;
    } else {
      global.socket_path = osmo::cli::kDefaultControlSocket;
    }
    osmo::LogLevel level{};
    if (!osmo::Logger::parse_level(global.log_level, &level))
      throw CLI::ValidationError("--log-level", "unknown level '" + global.log_level + "'");
    osmo::Logger::set_level(level);
  });

  int exit_code = 0;
  osmo::cli::add_daemon_commands(app, global, &exit_code);
  osmo::cli::add_testbed_commands(app, global, &exit_code);
  osmo::cli::add_ckpt_commands(app, global, &exit_code);
  osmo::cli::add_run_commands(app, global, &exit_code);
  osmo::cli::add_migrate_commands(app, global, &exit_code);
  osmo::cli::add_mon_commands(app, global, &exit_code);
  osmo::cli::add_balance_commands(app, global, &exit_code);
  osmo::cli::add_spread_commands(app, global, &exit_code);

  try {
    std::vector<std::string> args = drop_run_separator(argc, argv);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
