// SPDX-License-Identifier: GPL-2.0-or-later
// Pre-copy's round decision and auto's method choice (see precopy_plan.hpp).
#include "migrate/precopy_plan.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace osmo::migrate {

namespace {
constexpr double kPage = 4096;
double mib(double bytes) { return bytes / (1 << 20); }
}  // namespace

RoundVerdict next_round(const PrecopyBudget& b, const std::vector<RoundRecord>& done, std::uint64_t dirty_pages) {
  if (done.empty()) return {true, "first round: the whole memory"};
  const RoundRecord& last = done.back();
  // Pages per ms the last round reached (a round of a handful of pages says little: at least
  // the first round's rate, which moved the most).
  double rate = 0;
  for (const RoundRecord& r : done)
    if (r.ms > 0) rate = std::max(rate, r.pages / r.ms);
  const auto converged = static_cast<std::uint64_t>(std::max<double>(b.min_converged_pages, rate * b.converged_ms));
  if (dirty_pages <= converged)
    return {false, fmt::format("converged: {} pages dirty after round {} (at most {})", dirty_pages, done.size() - 1,
                               converged)};
  const int rounds_after_first = static_cast<int>(done.size()) - 1;
  if (rounds_after_first >= b.max_rounds)
    return {false, fmt::format("round budget: {} rounds, still {} pages dirty", rounds_after_first, dirty_pages)};
  std::uint64_t sent = 0;
  for (const RoundRecord& r : done) sent += r.pages;
  if (static_cast<double>(sent + dirty_pages) > b.max_bytes_factor * static_cast<double>(done.front().pages))
    return {false, fmt::format("byte budget: {:.1f} MiB sent, the next round would pass {:.1f}x the memory",
                               mib(sent * kPage), b.max_bytes_factor)};
  if (done.size() >= 2 && static_cast<double>(dirty_pages) >= b.shrink_factor * static_cast<double>(last.pages))
    return {false, fmt::format("not shrinking: {} pages dirty after a round of {}", dirty_pages, last.pages)};
  return {true, fmt::format("{} pages dirty", dirty_pages)};
}

MethodChoice choose_method(const AutoInputs& in, const AutoPolicy& p) {
  if (in.memory_bytes < p.small_bytes)
    return {"stop", fmt::format("small job: {:.1f} MiB of memory (under {:.0f} MiB), stop-and-copy", mib(in.memory_bytes),
                                mib(p.small_bytes))};
  const double limit = p.converge_fraction * p.assumed_link_bytes_per_s;
  if (in.dirty_bytes_per_s >= limit) {
    if (in.processes == 1)
      return {"postcopy", fmt::format("{:.1f} MiB dirtying {:.0f} MiB/s, too fast to converge (limit {:.0f} MiB/s): "
                                      "post-copy",
                                      mib(in.memory_bytes), mib(in.dirty_bytes_per_s), mib(limit))};
    return {"stop", fmt::format("{:.1f} MiB dirtying {:.0f} MiB/s, too fast to converge (limit {:.0f} MiB/s), and "
                                "post-copy moves single processes only ({} here): stop-and-copy",
                                mib(in.memory_bytes), mib(in.dirty_bytes_per_s), mib(limit), in.processes)};
  }
  return {"precopy", fmt::format("{:.1f} MiB dirtying {:.1f} MiB/s (under {:.0f} MiB/s): pre-copy", mib(in.memory_bytes),
                                 mib(in.dirty_bytes_per_s), mib(limit))};
}

}  // namespace osmo::migrate
