// SPDX-License-Identifier: GPL-2.0-or-later
// How fast the simulator runs: a converged cluster of N nodes (real gossip, load sampling, job
// placement) in steady state, measured in simulated events per wall second and virtual seconds
// per wall second, against the bare event agenda (push + pop of one event) measured in the same
// run (all in wall time: the machine is shared, so compare ratios, not absolute rates). The ratio
// printed at the end is the cost of one cluster event in agenda operations: how
// much of the simulator's time goes into the code under test rather than into the simulator.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "sim/cluster.hpp"
#include "sim/event_queue.hpp"
#include "sim/workload.hpp"

namespace {

std::map<std::string, double> g_events_per_s;

void BM_AgendaPushPop(benchmark::State& state) {
  osmo::sim::EventQueue q;
  osmo::env::SeededRandom r(1);
  // A standing population like a cluster's (one pending tick per node).
  for (int i = 0; i < 1000; ++i)
    q.push(static_cast<osmo::env::TimeMs>(r.uniform(50)), osmo::sim::EventKind::kNodeTick);
  std::uint64_t n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto e = q.pop();
    q.push(e.at_ms + 20, e.kind, e.node, e.arg, e.generation);
    ++n;
  }
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
  g_events_per_s["agenda"] = static_cast<double>(n) / s;
}
BENCHMARK(BM_AgendaPushPop)->UseRealTime();

void BM_ClusterSteadyState(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  osmo::sim::ClusterConfig cc;
  cc.nodes = nodes;
  cc.seed = 1;
  auto cluster = std::make_unique<osmo::sim::Cluster>(cc);
  cluster->start_all();
  cluster->run_until(cc.join_spread_ms);
  while (!cluster->converged() && cluster->now() < 120'000) cluster->run_until(cluster->now() + 500);
  osmo::sim::WorkloadConfig wc;
  wc.start_ms = cluster->now();
  wc.warmup_ms = cluster->now();
  wc.end_ms = cluster->now() + 3'600'000;
  osmo::sim::Workload w(*cluster, wc, 7);
  w.install();
  const std::uint64_t events0 = cluster->events_processed();
  const osmo::env::TimeMs virtual0 = cluster->now();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) cluster->run_until(cluster->now() + 1000);  // one virtual second
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto events = static_cast<double>(cluster->events_processed() - events0);
  const double virtual_s = static_cast<double>(cluster->now() - virtual0) / 1000.0;
  state.counters["events_per_s"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
  state.counters["virtual_s_per_wall_s"] = benchmark::Counter(virtual_s, benchmark::Counter::kIsRate);
  g_events_per_s["cluster/" + std::to_string(nodes)] = events / s;
}
BENCHMARK(BM_ClusterSteadyState)->Arg(100)->Arg(300)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  const auto base = g_events_per_s.find("agenda");
  if (base == g_events_per_s.end() || base->second <= 0) return 0;
  for (const auto& [name, eps] : g_events_per_s) {
    if (name == "agenda") continue;
    std::printf("ratio %s: %.0f events/s = %.4f x bare agenda (%.0f events/s); one cluster event "
                "costs %.0f agenda operations\n",
                name.c_str(), eps, eps / base->second, base->second, base->second / eps);
  }
  return 0;
}
