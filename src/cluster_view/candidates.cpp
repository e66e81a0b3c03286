// SPDX-License-Identifier: GPL-2.0-or-later
// Gossiped view -> policy candidates (the rules are in candidates.hpp).
#include "cluster_view/candidates.hpp"

namespace osmo::cluster_view {

policy::Candidate candidate_from_member(const gossip::MemberView& m) {
  policy::Candidate c;
  c.name = m.name;
  c.alive = m.state == gossip::MemberState::kAlive;
  c.is_self = m.is_self;
  c.load_known = m.load.has_value();
  if (m.load) {
    c.load = m.load->load;
    c.cpus = m.load->cpus;
    c.speed = m.load->speed;
    c.mem_free_mb = m.load->mem_free_mb;
    c.mem_total_mb = m.load->mem_total_mb;
    c.load_age_ms = m.is_self ? 0 : m.load_age_ms;
    c.draining = (m.load->flags & gossip::kLoadFlagDraining) != 0;
    c.takes_auto_migrations = (m.load->flags & gossip::kLoadFlagNoAutoMigration) == 0;
  }
  return c;
}

std::vector<policy::Candidate> candidates_from_view(std::span<const gossip::MemberView> view) {
  std::vector<policy::Candidate> out;
  out.reserve(view.size());
  for (const auto& m : view) out.push_back(candidate_from_member(m));
  return out;
}

}  // namespace osmo::cluster_view
