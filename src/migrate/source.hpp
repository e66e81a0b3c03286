// SPDX-License-Identifier: GPL-2.0-or-later
// The source side of a migration, run by the job's shepherd when its daemon orders it
// (docs/migration.md has the whole protocol and its failure table). It freezes the job, streams
// its image sealed to the target, hands the relay stream over, and lets the home anchor decide
// between the target taking the job and the job resuming here. Whatever fails before the anchor
// accepts the target leaves the job running here as if nothing happened.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "run/relay.hpp"
#include "wire/sealed_stream.hpp"

namespace osmo::migrate {

// What the source daemon orders (over the shepherd's control socket).
struct SourceOrder {
  std::string id;
  std::string from;  // this node
  std::string to;
  std::string method;
  int epoch = 1;
  wire::SealSuite suite = wire::SealSuite::kChaCha20Poly1305;
  wire::Key session_key{};
};
Result<SourceOrder> source_order_from_json(const nlohmann::json& j);

// Runs the whole source side over `stream` (the authenticated stream to the target's daemon,
// already accepted). The report for `osmo migrate -v` is {id, from, to, method, freeze_ms,
// total_ms, image_bytes, phases}; an error says what failed and where, and then the job runs
// here again.
// `report` gets the outcome exactly once: the report for `osmo migrate -v`, or {"error": ...}.
// On success it is called before the relay is finished (which ends this shepherd).
using ReportFn = std::function<void(const nlohmann::json&)>;
void migrate_out(run::MigrationControl& shepherd, const SourceOrder& order, UniqueFd stream, const ReportFn& report);

// The handler every shepherd runs for a connection on its control endpoint (installed with
// run::set_migration_handler at program start): answers `describe` ({spec, job_pid}) and
// carries out `migrate` (with the target stream as the message's fd), on a thread of its own.
void serve_shepherd_control(UniqueFd conn, std::shared_ptr<run::MigrationControl> control);

// HandoffState (less its stdin bytes, which travel as a sealed byte stream) as the target reads it.
nlohmann::json handoff_to_json(const run::HandoffState& s);
Result<run::HandoffState> handoff_from_json(const nlohmann::json& j);

}  // namespace osmo::migrate
