#include "cli/commands.hpp"
namespace osmo::cli {
void add_run_commands(CLI::App&, GlobalOptions&, int*) {}
}  // namespace osmo::cli
