// SPDX-License-Identifier: GPL-2.0-or-later
// The policy's picture of the cluster: one Candidate per known node, as the gossiped view shows it
// (src/cluster_view converts gossip::MemberView into these, for the daemon and the simulator
// alike, so that policy depends on nothing but base/ and env/), plus the rules for trusting
// information of a given age.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "env/clock.hpp"

namespace osmo::policy {

struct Candidate {
  std::string name;
  bool alive = false;               // only alive members are ever chosen (not suspect, dead, left)
  bool is_self = false;             // the local node (its load is always fresh)
  bool load_known = true;           // false: the member never reported a load (never chosen)
  double load = 0;                  // smoothed runnable / capacity, as gossiped (see load_estimator.hpp)
  double cpus = 0;
  double speed = 1.0;
  std::uint64_t mem_free_mb = 0;
  std::uint64_t mem_total_mb = 0;   // 0 when unknown
  env::TimeMs load_age_ms = 0;      // how old `load` is now
  // The node's own say, gossiped with its load (gossip::LoadInfo::flags): a draining node takes
  // no new job and no migration (`osmo drain`, SIGTERM); a node configured `balance = false`
  // takes no automatic migration (placement and `osmo migrate` by hand still reach it).
  bool draining = false;
  bool takes_auto_migrations = true;
};

// How much gossiped load figures are trusted as they age. With a load message every 250 ms and a
// window of 16 entries, a node of a large cluster usually hears about a given peer every few
// seconds, so information up to 2 s old is taken at face value. Older figures are charged a
// penalty that grows with age (the node may have been given work by others meanwhile: assume its
// load drifts up by 0.1 of its capacity per second), and beyond 10 s they are ignored: by then the
// node has either been chosen by others or is about to be reported anyway.
//
// Decisions (placement and balancing) draw their candidates only among the `pool` usable figures
// that are freshest. The whole view cannot be fresh: one load message per 250 ms per node cannot
// refresh N figures at every node, and the mean age of a view grows with N (simulator: 2.7 s at
// 100 nodes, 6.5 s at 300, 12 s at 1000, 15 s at 2000). The number of figures under 1 s old that
// a node holds does not grow or shrink with N, though (~15 at every size: the fresh halves of
// the four load messages it receives each second), and they are as random a sample of the
// cluster as its gossip peers are. Sampling among the freshest 16 kept the mean age of the
// figures placements compared at 0.82-0.84 s at every size (2.7, 4.4, 4.8 and 4.9 s when
// sampling the whole usable view), and the jobs waiting for a CPU fell by a quarter at 100 nodes
// and four- to six-fold at 300-2000 (docs/simulator.md).
// A smaller pool is fresher but leaves fewer nodes to weigh by capacity; 32 reached 1.1 s.
// 0 means every usable figure.
inline constexpr int kDefaultDecisionPool = 16;

struct Staleness {
  env::TimeMs fresh_ms = 2000;
  env::TimeMs max_age_ms = 10'000;
  double penalty_per_s = 0.1;
  int pool = kDefaultDecisionPool;

  bool usable(env::TimeMs age_ms) const { return age_ms <= max_age_ms; }
  // Extra normalised load charged to a figure of the given age.
  double penalty(env::TimeMs age_ms) const {
    if (age_ms <= fresh_ms) return 0;
    return penalty_per_s * static_cast<double>(age_ms - fresh_ms) / 1000.0;
  }
};

// Keeps the `keep` items whose figures are freshest, ordered by age. Equal ages are ordered by a
// hash of the name mixed with `salt` (a random draw per decision): were they ordered by name, a
// view whose ages tie (many figures heard in the same millisecond, or a test's) would give every
// node the same pool and send them all to its idle members. The result does not depend on the
// order of the view. `age(item)` and `name(item)` read an item. O(n + keep log keep).
template <typename T, typename Age, typename Name>
void keep_freshest(std::vector<T>& items, std::size_t keep, std::uint64_t salt, Age age,
                   Name name) {
  auto rank = [salt](const std::string& n) {
    // splitmix64's finaliser over the salted FNV-1a hash of the name: any bit of either matters.
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char ch : n) h = (h ^ ch) * 0x100000001b3ULL;
    h ^= salt;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
  };
  auto fresher = [&](const T& a, const T& b) {
    const env::TimeMs x = age(a), y = age(b);
    if (x != y) return x < y;
    const std::uint64_t p = rank(name(a)), q = rank(name(b));
    if (p != q) return p < q;
    return name(a) < name(b);
  };
  if (items.size() > keep) {
    std::nth_element(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(keep), items.end(),
                     fresher);
    items.resize(keep);
  }
  std::sort(items.begin(), items.end(), fresher);
}

}  // namespace osmo::policy
