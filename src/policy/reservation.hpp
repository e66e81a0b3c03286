// SPDX-License-Identifier: GPL-2.0-or-later
// The target's half of an automatic migration: before a job is sent, the node that would receive
// it checks the move against its *own* figures and what it has already promised, and either
// reserves room for the job or refuses. Pure, shared by the daemon (peer `balance.reserve`) and
// the simulator.
//
// Why the target must have a say: every overloaded node decides on a view seconds old. Two of
// them can pick the same idle node in the same second; each sees it idle, each sends a job, and
// the idle node ends up as loaded as they were (or worse, with a larger cluster, ten of them).
// The source's ledger only knows what *it* sent. The target knows everything it has accepted:
//
//   n1 (load 3) --offer j1, before 3.0 after 2.0, need 0.2--> n3 (load 0, promised 0): 0+1 -> ok
//   n2 (load 3) --offer j2, before 3.0 after 2.0, need 0.2--> n3 (load 0, promised 1): 0+1+1 -> ok
//   n4 (load 2) --offer j3, before 2.0 after 1.0, need 0.2--> n3 (promised 2): 0+2+1 = 3 -> refused
//
// A reservation counts until the job has arrived and the target's load estimator shows it
// (settle_ms after arrival), or until it expires (the source gave up or failed), whichever comes
// first.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "env/clock.hpp"
#include "policy/balance.hpp"
#include "policy/placement.hpp"
#include "policy/view.hpp"

namespace osmo::policy {

// What a source offers to a target (the fields of the `balance.reserve` peer request).
struct MoveOffer {
  std::string job;              // the job's cluster id
  std::string source;           // the node that runs it now
  MoveReason reason = MoveReason::kLoad;
  double cpu_share = 1.0;       // runnable tasks it brings
  std::uint64_t mem_mb = 0;     // resident memory it brings
  double source_load_before = 0;
  double source_load_after = 0;
  double required_gain = 0;     // the gain the move must exceed (policy::required_gain)
  env::TimeMs cost_ms = 0;      // the source's estimate of the move's duration
};

// Moves this node has promised to take and does not show in its own load yet.
class ReservationBook {
 public:
  // Settle: the job's arrival is 95% visible in a LoadEstimator (rise 500 ms) after 1.5 s.
  // Hold: a reservation whose job never comes is dropped after hold_base_ms plus twice the move's
  // estimated cost (a large job takes a while to arrive).
  static constexpr env::TimeMs kDefaultSettleMs = 1500;
  static constexpr env::TimeMs kDefaultHoldBaseMs = 10'000;

  explicit ReservationBook(env::TimeMs settle_ms = kDefaultSettleMs,
                           env::TimeMs hold_base_ms = kDefaultHoldBaseMs)
      : settle_ms_(settle_ms), hold_base_ms_(hold_base_ms) {}

  // Reserves room for `offer` (replacing an earlier reservation of the same job).
  void reserve(const MoveOffer& offer, env::TimeMs now);
  // The job has arrived: it counts settle_ms longer, then the load figure carries it.
  void arrived(std::string_view job, env::TimeMs now);
  // The source gave up: the reservation ends now.
  void cancel(std::string_view job);
  bool holds(std::string_view job, env::TimeMs now) const;
  PlacementLedger::Pending pending(env::TimeMs now) const;
  void prune(env::TimeMs now);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    double cpu;
    std::uint64_t mem_mb;
    env::TimeMs until_ms;
  };
  env::TimeMs settle_ms_;
  env::TimeMs hold_base_ms_;
  std::map<std::string, Entry, std::less<>> entries_;
};

struct Verdict {
  bool accepted = false;
  std::string why;              // the refusal's reason, or a summary of the figures
  double load_after = 0;        // our normalised load with the job and everything promised
};

// The target's decision on `offer`. `self` is this node as the policy sees it (its own, fresh
// figures: cluster_view::candidate_from_member of its own member). Refuses when this node is
// draining, takes no automatic migration (balance = false; a drain's moves are still taken), has
// no capacity, cannot hold the job's resident memory with what it promised, or when the move's
// gain computed with our load now plus our promises does not exceed what the source required
// (load moves), or would overload us (memory moves: at most max(1.0, the source's load)).
Verdict accept_move(const Candidate& self, const MoveOffer& offer, const ReservationBook& book,
                    env::TimeMs now, const BalanceConfig& config = {});

}  // namespace osmo::policy
