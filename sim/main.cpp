// SPDX-License-Identifier: GPL-2.0-or-later
// osmo-sim: runs one simulated-cluster scenario and prints its metrics as key=value lines (or one
// JSON object with --json). Same options and seed, same output: see docs/simulator.md.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "base/log.hpp"
#include "gossip/defaults.hpp"
#include "sim/scenarios.hpp"

int main(int argc, char** argv) {
  using osmo::sim::ScenarioOptions;
  CLI::App app{"osmo-sim: discrete-event simulation of an osmo cluster (real gossip and policy)"};
  ScenarioOptions o;
  std::string scenario = "convergence";
  std::string log_level = "warn";
  bool json = false;
  double latency_min = 1, latency_max = 5;
  double duration_s = 60, limit_s = 120, warmup_s = 20, runtime_s = 20;
  int pool = o.workload.placement.staleness.pool;

  app.add_option("--scenario,-s", scenario,
                 "convergence | failure | loss | partition | churn | placement")
      ->capture_default_str();
  app.add_option("--nodes,-n", o.cluster.nodes, "cluster size")->capture_default_str();
  app.add_option("--seed", o.cluster.seed, "random seed (same seed, same run)")
      ->capture_default_str();
  app.add_option("--seeds", o.cluster.seed_nodes, "seed nodes everyone joins through")
      ->capture_default_str();
  app.add_option("--loss", o.cluster.loss, "datagram loss probability")->capture_default_str();
  app.add_option("--latency-min-ms", latency_min)->capture_default_str();
  app.add_option("--latency-max-ms", latency_max)->capture_default_str();
  app.add_option("--tick-ms", o.cluster.tick_ms, "node tick period")->capture_default_str();
  app.add_option("--join-spread-ms", o.cluster.join_spread_ms)->capture_default_str();
  app.add_flag("!--homogeneous", o.cluster.heterogeneous,
               "every node 4 CPUs at speed 1 (default: mixed sizes and speeds)");
  app.add_option("--kill,-k", o.kill, "failure: nodes to kill")->capture_default_str();
  app.add_option("--duration-s", duration_s, "main phase length (loss, partition, churn, placement)")
      ->capture_default_str();
  app.add_option("--limit-s", limit_s, "give up waiting for a condition after")
      ->capture_default_str();
  app.add_option("--scan-ms", o.scan_ms, "period of full view scans (false deaths); 0 = off")
      ->capture_default_str();
  app.add_option("--churn-interval-ms", o.churn_interval_ms)->capture_default_str();
  app.add_option("--churn-down-ms", o.churn_down_ms)->capture_default_str();
  app.add_option("--placement", o.placement, "policy | random | home | oracle | pull | roundrobin | central | all | compare")
      ->capture_default_str();
  app.add_option("--utilization", o.workload.utilization, "offered load / capacity")
      ->capture_default_str();
  app.add_option("--runtime-s", runtime_s, "mean job run time")->capture_default_str();
  app.add_option("--warmup-s", warmup_s, "placement: measure after")->capture_default_str();
  app.add_option("--choices", o.workload.placement.choices, "placement: d of power-of-d")
      ->capture_default_str();
  app.add_flag("--balance", o.workload.balance, "placement: also run the migration balancer");
  app.add_option("--load-window", o.cluster.gossip.load_window, "gossip: load entries per message")
      ->capture_default_str();
  app.add_option("--pool", pool,
                 "placement and balancing: sample among the k freshest load figures (0: all)")
      ->capture_default_str();
  app.add_flag("--ps", o.workload.processor_sharing,
               "placement: processor sharing (run times stretch with load, migrations take time "
               "and CPU, slowdowns measured)");
  std::string demand = "exp";
  app.add_option("--demand", demand, "placement: exp | pareto (bounded, --pareto-alpha, --pareto-ratio)")
      ->capture_default_str();
  app.add_option("--pareto-alpha", o.workload.pareto_alpha)->capture_default_str();
  app.add_option("--pareto-ratio", o.workload.pareto_ratio, "largest / smallest demand")
      ->capture_default_str();
  app.add_flag("--heavy-memory", o.workload.heavy_memory,
               "placement: memory per job from a bounded Pareto law (32 MB .. 8 GB)");
  app.add_option("--link-mb-s", o.workload.link_mb_per_s, "--ps: migration copy rate")
      ->capture_default_str();
  double drain_s = 120;
  app.add_option("--drain-s", drain_s, "--ps: after the last arrival, wait up to this long for the measured jobs")
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON object instead of key=value lines");
  app.add_flag("--timing", o.timing, "add wall-clock figures (these differ between runs)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (gossip logs)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!osmo::Logger::parse_level(log_level, &o.cluster.log_level)) {
    std::fprintf(stderr, "osmo-sim: --log-level '%s': expected trace|debug|info|warn|error|off\n",
                 log_level.c_str());
    return 2;
  }
  o.cluster.latency_min_ms = static_cast<osmo::env::TimeMs>(latency_min);
  o.cluster.latency_max_ms = static_cast<osmo::env::TimeMs>(latency_max);
  if (o.cluster.gossip.load_window < 0 ||
      o.cluster.gossip.load_window > osmo::gossip::kMaxLoadWindow) {
    std::fprintf(stderr, "osmo-sim: --load-window %d: must be 0..%d\n",
                 o.cluster.gossip.load_window, osmo::gossip::kMaxLoadWindow);
    return 2;
  }
  if (pool < 0) {
    std::fprintf(stderr, "osmo-sim: --pool %d: must be 0 (all) or more\n", pool);
    return 2;
  }
  if (demand == "pareto") {
    o.workload.demand = osmo::sim::WorkloadConfig::Demand::kPareto;
  } else if (demand != "exp") {
    std::fprintf(stderr, "osmo-sim: --demand '%s': expected exp or pareto\n", demand.c_str());
    return 2;
  }
  if (!(o.workload.pareto_alpha > 0) || !(o.workload.pareto_ratio > 1) || !(o.workload.link_mb_per_s > 0) ||
      drain_s < 0) {
    std::fprintf(stderr, "osmo-sim: --pareto-alpha and --link-mb-s must be > 0, --pareto-ratio > 1, --drain-s >= 0\n");
    return 2;
  }
  o.workload.drain_ms = static_cast<osmo::env::TimeMs>(drain_s * 1000);
  o.workload.placement.staleness.pool = pool;
  o.workload.balancer.staleness.pool = pool;
  o.duration_ms = static_cast<osmo::env::TimeMs>(duration_s * 1000);
  o.limit_ms = static_cast<osmo::env::TimeMs>(limit_s * 1000);
  o.workload.warmup_ms = static_cast<osmo::env::TimeMs>(warmup_s * 1000);
  o.workload.mean_runtime_ms = static_cast<osmo::env::TimeMs>(runtime_s * 1000);

  auto r = osmo::sim::run_scenario(scenario, o);
  if (!r.ok()) {
    std::fprintf(stderr, "osmo-sim: %s\n", r.error().str().c_str());
    return 2;
  }
  const std::string out = json ? r->to_json() + "\n" : r->to_kv();
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}
