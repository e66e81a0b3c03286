#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The simulator report of issue 10 (docs/balancing.md): mean slowdown of osmo (power-of-two
placement on gossiped loads plus the balancing loop) against the baselines on the same job stream,
at a given cluster size and offered load, with Pareto CPU demands under processor sharing; the age
of the load figures decisions used; gossip traffic per node and second; wall time per run.

Each (size, load, mode) is one `osmo-sim -s placement --ps --json` run; the modes share the job
stream (same seed). Runs go two at a time (--jobs). Output: one markdown table per size and load,
and every run's JSON in --out.

Usage: report.py OSMO_SIM --nodes 100 [--nodes 1000 ...] [--load 0.7 --load 0.9]
                 [--modes home,random,roundrobin,p2c,osmo,central] [--duration-s 120]
                 [--warmup-s 60] [--drain-s 60] [--runtime-s 10] [--homogeneous] [--out DIR]
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time

MODES = {
    "home": ["--placement", "home"],
    "random": ["--placement", "random"],
    "roundrobin": ["--placement", "roundrobin"],
    "p2c": ["--placement", "policy"],
    "osmo": ["--placement", "policy", "--balance"],
    "central": ["--placement", "central"],
}
LABEL = {
    "home": "local only",
    "random": "random",
    "roundrobin": "round robin",
    "p2c": "power of two (placement only)",
    "osmo": "**osmo** (placement + balancing)",
    "central": "omniscient central queue",
}


def run(sim, n, load, mode, a):
    cmd = [sim, "-s", "placement", "-n", str(n), "--ps", "--demand", "pareto", "--pareto-alpha", str(a.alpha),
           "--utilization", str(load), "--runtime-s", str(a.runtime_s), "--duration-s", str(a.duration_s),
           "--warmup-s", str(a.warmup_s), "--drain-s", str(a.drain_s), "--limit-s", str(a.limit_s),
           "--seed", str(a.seed), "--json", "--timing", *MODES[mode]]
    if a.homogeneous:
        cmd.append("--homogeneous")
    if a.heavy_memory:
        cmd.append("--heavy-memory")
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        return n, load, mode, {"error": r.stderr.strip(), "cmd": " ".join(cmd)}, wall
    out = json.loads(r.stdout)
    out["cmd"] = " ".join(cmd)
    return n, load, mode, out, wall


def fmt(x, spec=".3f"):
    return "" if x is None else format(x, spec)


def ms(x):
    return "" if x is None else f"{x:.0f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sim")
    ap.add_argument("--nodes", type=int, action="append")
    ap.add_argument("--load", type=float, action="append")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--runtime-s", type=float, default=10)
    ap.add_argument("--duration-s", type=float, default=120)
    ap.add_argument("--warmup-s", type=float, default=60)
    ap.add_argument("--drain-s", type=float, default=60)
    ap.add_argument("--limit-s", type=float, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--homogeneous", action="store_true")
    ap.add_argument("--heavy-memory", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="sim-report")
    a = ap.parse_args()
    nodes = a.nodes or [100]
    loads = a.load or [0.7, 0.9]
    modes = a.modes.split(",")
    for m in modes:
        if m not in MODES:
            sys.exit(f"report.py: unknown mode '{m}' ({', '.join(MODES)})")
    os.makedirs(a.out, exist_ok=True)
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        futs = [pool.submit(run, a.sim, n, load, m, a) for n in nodes for load in loads for m in modes]
        for f in concurrent.futures.as_completed(futs):
            n, load, m, out, wall = f.result()
            out["report_wall_s"] = wall
            results[(n, load, m)] = out
            with open(os.path.join(a.out, f"n{n}-u{load}-{m}.json"), "w") as fh:
                json.dump(out, fh, indent=1)
            print(f"done n={n} load={load} {m}: {wall:.0f} s wall"
                  f"{' ERROR ' + out['error'] if 'error' in out else ''}", file=sys.stderr, flush=True)
    for n in nodes:
        for load in loads:
            ref = results.get((n, load, "central"), {}).get("slowdown_mean")
            p2c = results.get((n, load, "p2c"), {}).get("slowdown_mean")
            print(f"\n{n} nodes, offered load {load}, Pareto demands (alpha {a.alpha}, mean {a.runtime_s} s), "
                  f"seed {a.seed}{', homogeneous' if a.homogeneous else ''}\n")
            print("| mode | mean slowdown | vs central | vs p2c | p99 | unfinished | migrations | "
                  "decision load age | balance target age | datagrams/node/s | bytes/node/s | wall |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for m in modes:
                r = results.get((n, load, m), {})
                if "error" in r:
                    print(f"| {LABEL[m]} | error: {r['error']} |")
                    continue
                sd = r.get("slowdown_mean")
                print(f"| {LABEL[m]} | {fmt(sd)} | {fmt(sd / ref if sd and ref else None, '.2f')} | "
                      f"{fmt(sd / p2c if sd and p2c else None, '.2f')} | {fmt(r.get('slowdown_p99'), '.2f')} | "
                      f"{r.get('jobs_unfinished', '')}/{r.get('jobs_measured', '')} | {r.get('migrations', '')} | "
                      f"{ms(r.get('decision_load_age_mean_ms'))} | {ms(r.get('balance_target_age_mean_ms'))} | "
                      f"{fmt(r.get('measured_datagrams_per_node_s'), '.2f')} | "
                      f"{fmt(r.get('measured_bytes_per_node_s'), '.0f')} | {fmt(r.get('report_wall_s'), '.0f')} s |")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
