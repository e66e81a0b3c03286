// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo migrate ID NODE|home [--method ...] [--check] [-v]`: moves a running job now, from any
// node of the cluster. The command finds the job (`jobs.list`, every node), then asks the local
// daemon (`jobs.migrate`), which asks the node that runs the job. One line on failure says what
// failed and where; the job then runs where it ran before.
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "base/progress_line.hpp"
#include "cli/commands.hpp"
#include "daemon/control_client.hpp"
#include "daemon/services.hpp"
#include "migrate/migrate_service.hpp"
#include "migrate/movable.hpp"
#include "migrate/protocol.hpp"
#include "run/run_service.hpp"
#include "migrate/source.hpp"
#include "run/relay.hpp"
#include "migrate/target.hpp"

namespace osmo::cli {
namespace {

struct MigrateOpts {
  std::string id, to, method = "auto";
  bool check = false, verbose = false, json = false, force = false, quiet = false;
};

// The job whose id is `id` or starts with it, from a cluster-wide listing; an error when none or
// more than one match.
Result<nlohmann::json> find_job(const nlohmann::json& jobs, const std::string& id) {
  const nlohmann::json* found = nullptr;
  for (const auto& j : jobs) {
    const std::string jid = j.value("id", "");
    if (jid == id) return j;
    if (jid.rfind(id, 0) == 0) {
      if (found != nullptr) return make_error("job id '{}' is ambiguous ({} and {})", id, (*found)["id"].get<std::string>(), jid);
      found = &j;
    }
  }
  if (found == nullptr) return make_error("no job {} in the cluster (see osmo ps)", id);
  return *found;
}

int migrate_command(const MigrateOpts& o, const std::string& socket) {
  auto list = daemon::call_local(socket, {{"op", "jobs.list"}});
  if (!list.ok()) {
    std::cerr << "osmo migrate: " << list.error().str() << "\n";
    return 1;
  }
  auto job = find_job((*list)["jobs"], o.id);
  if (!job.ok()) {
    for (const auto& e : (*list)["errors"]) std::cerr << "osmo migrate: (" << e.get<std::string>() << ")\n";
    std::cerr << "osmo migrate: " << job.error().str() << "\n";
    return 1;
  }
  nlohmann::json req{{"op", "jobs.migrate"}, {"id", (*job)["id"]}, {"node", (*job)["node"]},
                     {"to", o.to}, {"method", o.method}, {"check", o.check}, {"force", o.force}};
  Result<nlohmann::json> r = make_error("not asked");
  {
    // The move is done by the node that runs the job, which reports once at the end: the line
    // shows what is asked and the time it takes, not bytes (docs/operations.md).
    ProgressLine progress(fmt::format("osmo migrate: job {}", (*job)["id"].get<std::string>()),
                          !o.check && progress_wanted(o.quiet));
    progress.phase(fmt::format("{} moves it to {} ({})", (*job)["node"].get<std::string>(), o.to, o.method));
    ProgressTicker ticker(progress);
    r = daemon::call_local(socket, req);
  }
  if (!r.ok()) {
    std::cerr << "osmo migrate: " << r.error().str() << "\n";
    return 1;
  }
  if (o.check) {
    std::cout << fmt::format("job {} on {} can move: {}\n", (*job)["id"].get<std::string>(),
                             (*job)["node"].get<std::string>(), r->value("detail", "yes"));
    return 0;
  }
  if (o.json)
    std::cout << r->dump() << "\n";
  else if (o.verbose)
    std::cout << migrate::render_report(*r) << "\n";
  return 0;
}

}  // namespace

void add_migrate_commands(CLI::App& app, GlobalOptions& global, int* exit_code) {
  daemon::register_plugin(migrate::install_migrate_service);
  // Every shepherd this binary becomes serves its control endpoint with the migration's source side.
  run::set_migration_handler(migrate::serve_shepherd_control);
  run::set_movability_check(migrate::check_movable);
  auto o = std::make_shared<MigrateOpts>();
  auto* cmd = app.add_subcommand("migrate", "Move a running job to another node now (or back home)");
  cmd->add_option("id", o->id, "Job id from osmo ps (or a unique prefix)")->required();
  cmd->add_option("node", o->to, "Target node name, or 'home' for the job's home node");
  cmd->add_option("--method", o->method, "stop (stop-and-copy), precopy, postcopy or auto")
      ->check(CLI::IsMember({"auto", "stop", "precopy", "postcopy"}));
  cmd->add_flag("--check", o->check, "Only say whether the job can move (it is not touched)");
  cmd->add_flag("--force", o->force, "Move a job pinned with osmo run --no-migrate anyway");
  cmd->add_flag("-v,--verbose", o->verbose, "Show the method chosen and the phase times");
  cmd->add_flag("--json", o->json, "Print the migration's report as JSON (method, freeze_ms, total_ms, phases)");
  cmd->footer(
      "\nThe job keeps its id, its home, its output stream and its exit status. If anything fails "
      "before the target\nconfirms, the job goes on where it was, and one line says what failed "
      "and where.");
  auto fds = std::make_shared<std::pair<int, int>>(-1, -1);
  auto* in = app.add_subcommand(migrate::kIncomingSubcommand, "internal: the target side of a migration");
  in->group("");  // hidden from help
  in->add_option("stream_fd", fds->first)->required();
  in->add_option("order_fd", fds->second)->required();
  in->callback([fds, exit_code] { *exit_code = migrate::incoming_main(fds->first, fds->second); });

  cmd->callback([o, &global, exit_code] {
    if (!o->check && o->to.empty()) {
      std::cerr << "osmo migrate: no target node given (a node name from osmo nodes, or home)\n";
      *exit_code = 2;
      return;
    }
    o->quiet = global.quiet;
    *exit_code = migrate_command(*o, global.socket_path);
  });
}

}  // namespace osmo::cli
