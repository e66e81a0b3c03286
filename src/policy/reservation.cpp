// SPDX-License-Identifier: GPL-2.0-or-later
// The target's acceptance of a move and its promises (see reservation.hpp).
#include "policy/reservation.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "policy/load_estimator.hpp"

namespace osmo::policy {

void ReservationBook::reserve(const MoveOffer& offer, env::TimeMs now) {
  prune(now);
  entries_[offer.job] =
      Entry{std::max(offer.cpu_share, 0.0), offer.mem_mb,
            now + hold_base_ms_ + 2 * std::max<env::TimeMs>(offer.cost_ms, 0)};
}

void ReservationBook::arrived(std::string_view job, env::TimeMs now) {
  auto it = entries_.find(job);
  if (it != entries_.end()) it->second.until_ms = std::min(it->second.until_ms, now + settle_ms_);
}

void ReservationBook::cancel(std::string_view job) {
  auto it = entries_.find(job);
  if (it != entries_.end()) entries_.erase(it);
}

bool ReservationBook::holds(std::string_view job, env::TimeMs now) const {
  auto it = entries_.find(job);
  return it != entries_.end() && it->second.until_ms > now;
}

PlacementLedger::Pending ReservationBook::pending(env::TimeMs now) const {
  PlacementLedger::Pending p;
  for (const auto& [job, e] : entries_) {
    if (e.until_ms <= now) continue;
    p.cpu += e.cpu;
    p.mem_mb += e.mem_mb;
    ++p.jobs;
  }
  return p;
}

void ReservationBook::prune(env::TimeMs now) {
  std::erase_if(entries_, [now](const auto& kv) { return kv.second.until_ms <= now; });
}

Verdict accept_move(const Candidate& self, const MoveOffer& offer, const ReservationBook& book,
                    env::TimeMs now, const BalanceConfig& config) {
  Verdict v;
  if (self.draining) {
    v.why = "this node is draining";
    return v;
  }
  if (!self.takes_auto_migrations && offer.reason != MoveReason::kDrain) {
    v.why = "this node takes no automatic migration (balance = false)";
    return v;
  }
  const double cap = capacity(self.cpus, self.speed);
  if (cap <= 0 || !self.load_known) {
    v.why = "this node has no measured capacity";
    return v;
  }
  const auto promised = book.pending(now);
  // Never take a job whose resident memory we cannot hold: it would swap or be killed here.
  const std::uint64_t free_mb = self.mem_free_mb > promised.mem_mb ? self.mem_free_mb - promised.mem_mb : 0;
  if (offer.mem_mb > 0 && (self.mem_total_mb == 0 || offer.mem_mb > free_mb)) {
    v.why = fmt::format("cannot hold its {} MB resident: {} MB free, {} MB of it promised", offer.mem_mb,
                        self.mem_free_mb, promised.mem_mb);
    return v;
  }
  const double runnable = std::max(self.load, 0.0) * cap + promised.cpu;
  v.load_after = (runnable + std::max(offer.cpu_share, 0.0)) / cap;
  switch (offer.reason) {
    case MoveReason::kLoad: {
      const double gain = offer.source_load_before - std::max(offer.source_load_after, v.load_after);
      if (gain <= offer.required_gain + kGainEpsilon) {
        v.why = fmt::format("not worth it any more: load here {:.2f} with {} promised job(s), {:.2f} "
                            "after; gain {:.2f} <= {:.2f} needed",
                            self.load, promised.jobs, v.load_after, gain, offer.required_gain);
        return v;
      }
      v.why = fmt::format("gain {:.2f} > {:.2f}", gain, offer.required_gain);
      break;
    }
    case MoveReason::kMemory: {
      if (self.mem_total_mb > 0) {
        const double pressure_after =
            1.0 - static_cast<double>(free_mb - offer.mem_mb) / static_cast<double>(self.mem_total_mb);
        if (pressure_after > config.memory_target_max) {
          v.why = fmt::format("memory would be {:.0f}% used here", pressure_after * 100);
          return v;
        }
      }
      if (v.load_after > std::max(offer.source_load_before, 1.0) +
                             config.min_gain_job_fraction * std::max(offer.cpu_share, 0.0) / cap) {
        v.why = fmt::format("load here would be {:.2f}", v.load_after);
        return v;
      }
      v.why = "room for its memory";
      break;
    }
    case MoveReason::kDrain: v.why = "taking a drained job"; break;
  }
  v.accepted = true;
  return v;
}

}  // namespace osmo::policy
