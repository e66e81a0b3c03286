// SPDX-License-Identifier: GPL-2.0-or-later
// The simulator's experiments. Each builds a cluster from the options, runs one scenario on the
// virtual clock and returns its figures as metrics (times in virtual milliseconds):
//
//   convergence  N nodes join through a few seeds: time until every node sees every node alive.
//   failure      after convergence, k nodes are killed: time until every survivor sees them
//                suspect, then dead; and whether anyone was wrongly declared dead meanwhile.
//   loss         a converged cluster runs for a while under datagram loss: false suspicions and
//                false deaths (a live node declared dead by someone).
//   partition    the cluster is cut in two halves, then healed: time until each side sees the
//                other gone, and until the whole cluster has converged again.
//   churn        nodes are killed and restarted continuously: false deaths among the nodes that
//                never failed, view accuracy, and time to converge once churn stops.
//   placement    a stream of jobs placed by the real policy (or a baseline) on a converged
//                cluster: spread of load compared with the ideal. "all" modes compares them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "base/result.hpp"
#include "sim/cluster.hpp"
#include "sim/metrics.hpp"
#include "sim/workload.hpp"

namespace osmo::sim {

struct ScenarioOptions {
  ClusterConfig cluster;
  env::TimeMs limit_ms = 120'000;        // give up waiting for a condition after this long
  env::TimeMs step_ms = 100;             // how often conditions are checked
  int kill = 1;                          // failure: nodes killed
  env::TimeMs duration_ms = 60'000;      // loss/churn/partition/placement: main phase length
  env::TimeMs scan_ms = 2000;            // full view scans for false deaths
  env::TimeMs churn_interval_ms = 1000;  // churn: one kill and one restart per interval
  env::TimeMs churn_down_ms = 10'000;    // churn: a killed node stays down this long
  std::string placement = "policy";      // placement: policy|random|home|oracle|pull|all
  WorkloadConfig workload;
  bool timing = false;                   // add wall-clock figures (not repeatable!)
};

const std::vector<std::string>& scenario_names();

Result<Metrics> run_scenario(const std::string& name, const ScenarioOptions& options);

}  // namespace osmo::sim
