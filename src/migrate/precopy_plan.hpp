// SPDX-License-Identifier: GPL-2.0-or-later
// The decisions of pre-copy and of `--method auto`, as pure functions of what was measured
// (docs/migration.md, "Pre-copy" and "Methods"): whether another round of copying while the job
// runs is worth it, and which method a job should move with. No clock, no I/O: the unit tests
// (tests/migrate/precopy_plan_test.cpp) drive them with made-up histories.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace osmo::migrate {

// When the rounds stop (the job is then frozen and the last dirty set goes with the image).
struct PrecopyBudget {
  int max_rounds = 8;  // rounds after the first full copy
  // Converged: the dirty set moves within this long at the rate the last round reached, or is
  // at most min_converged_pages anyway.
  double converged_ms = 5;
  std::uint64_t min_converged_pages = 64;
  // Bytes sent in all rounds together, as a multiple of the first (full) round.
  double max_bytes_factor = 3.0;
  // A dirty set at least this fraction of the previous round's is not shrinking.
  double shrink_factor = 0.9;
};

struct RoundRecord {
  std::uint64_t pages = 0;  // pages sent in the round
  double ms = 0;            // how long sending them took
};

struct RoundVerdict {
  bool another = false;  // false: freeze now
  std::string reason;    // why (for the log and `osmo migrate -v`)
};

// done: the rounds so far (the first is the full copy); dirty_pages: what the tracker reports
// now (the next round's pages).
RoundVerdict next_round(const PrecopyBudget& b, const std::vector<RoundRecord>& done, std::uint64_t dirty_pages);

// What `--method auto` knows before it decides (measured with the write tracker for a moment).
struct AutoInputs {
  std::uint64_t memory_bytes = 0;  // present private writable memory of the whole job
  double dirty_bytes_per_s = 0;    // pages written during the probe, per second
  std::size_t processes = 1;       // live processes of the job
};

struct AutoPolicy {
  std::uint64_t small_bytes = 16ull << 20;  // stop-and-copy below this: its freeze is short anyway
  // The link's rate assumed before anything was sent (the testbed's TCP between namespaces
  // moves ~1 GiB/s; a 1 Gbit/s network ~110 MiB/s): conservative.
  double assumed_link_bytes_per_s = 110.0 * (1 << 20);
  // Dirtying at this fraction of the link or more does not converge: each round would send
  // about as much as the one before.
  double converge_fraction = 0.5;
};

struct MethodChoice {
  std::string method;  // "stop", "precopy" or "postcopy"
  std::string reason;
};

MethodChoice choose_method(const AutoInputs& in, const AutoPolicy& p = {});

}  // namespace osmo::migrate
