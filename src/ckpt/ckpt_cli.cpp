#include "cli/commands.hpp"
namespace osmo::cli {
void add_ckpt_commands(CLI::App&, GlobalOptions&, int*) {}
}  // namespace osmo::cli
