// The `osmo` binary: one executable for the daemon and every tool. Subcommands are registered by
// the part of the design they belong to (see commands.hpp).
#include <cstdlib>
#include <iostream>

#include "base/log.hpp"
#include "cli/commands.hpp"
#include "base/version.hpp"

int main(int argc, char** argv) {
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
