#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Benchmark of issue 10 on the testbed (root): how close the balancing loop brings a cluster to
the ideal makespan when every job starts on one node.

Cases (4 nodes of --cpus CPU each, all jobs started at n1 with `osmo run --node n1`, so only the
balancer can spread them):
  equal  N jobs of --cpu-s CPU seconds each. Makespan with balancing on, then off (every daemon
         started with --no-balance, same jobs, same testbed size), and the ideal (total work /
         total capacity). Printed as ratios to the ideal: the target is on <= 1.25x, off ~4x.
         Also the most moves of one job (ping-pong: at most 2).
  mixed  --mixed-jobs jobs whose lengths spread evenly from 1 s to 30 s of CPU; on and off.
  join   as equal, with a 5th node stopped at the start and started half way (at half of the
         ideal makespan): it must receive work, without a stampede (its peak job count is printed
         next to the mean of the others at that moment).
  drain  as equal; half way, `osmo drain n2`: no job lost, every output intact, n2 ends with no
         guest.

The work of a job is a fixed number of iterations of a python loop (its output is checked), sized
from a calibration run of the same loop on this machine (CPU seconds per iteration, the fastest
of three). Every job gives up after a wall-clock bound of its own; processes are only ever killed
by the pids this script started.

Usage: balance_bench.py OSMO_BIN [--cases equal,mixed,join,drain] [--jobs 16] [--cpu-s 6]
                        [--cpus 0.5] [--mixed-jobs 8] [--json FILE]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "cluster"))
import testbed  # noqa: E402

MAX_WALL_S = 1200
JOB = """
import sys, time
n, tag = int(sys.argv[1]), sys.argv[2]
t0 = time.monotonic()
s = 0
for i in range(n):
    s += i * i
    if i % 1000000 == 0 and time.monotonic() - t0 > MAX_WALL_S:
        sys.exit(3)
print(tag, s)
""".replace("MAX_WALL_S", str(MAX_WALL_S))


def expected(n, tag):
    return f"{tag} {(n - 1) * n * (2 * n - 1) // 6}\n"


def calibrate():
    """Iterations of JOB per CPU second on this machine: the fastest of three 2-M-iteration runs
    (the others are slowed by whatever else runs here)."""
    n = 2_000_000
    best = None
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", JOB, str(n), "cal"], check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = cpu if best is None else min(best, cpu)
    return n / max(best, 1e-3)


def jobs_seen(observer):
    r = testbed.on(observer, "ps", "--json", check=False, timeout=30)
    try:
        return json.loads(r.stdout) if r.returncode == 0 else []
    except json.JSONDecodeError:
        return []


class Run:
    """One batch of jobs started at n1 with --node n1, watched until they all end."""

    def __init__(self, label, iters, prefix):
        self.label = label
        self.iters = iters
        self.tags = [f"{prefix}{k}" for k in range(len(iters))]
        self.procs = []
        self.moves = {}        # job id -> most migrations seen
        self.nodes_seen = {}   # node -> most of our jobs seen on it at once
        self.samples = []      # (t, {node: count})
        self.events = []       # (t, what)
        self.start = None
        self.cpu_s = 0.0      # CPU the node cgroups used during the run
        self.node_cpu = {}    # the same per node
        self.load_avg = 0.0   # the machine's 5-minute load average at the end

    def launch(self):
        self.start = time.monotonic()
        for n, tag in zip(self.iters, self.tags):
            self.procs.append(subprocess.Popen(
                [testbed.OSMO, "testbed", "exec", "n1", "--", testbed.OSMO, "run", "--node", "n1",
                 "python3", "-c", JOB, str(n), tag],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

    def elapsed(self):
        return time.monotonic() - self.start

    def poll(self, observer="n1"):
        tags = set(self.tags)
        ours = [j for j in jobs_seen(observer) if j["cmd"].rsplit(" ", 1)[-1] in tags]
        where = {}
        for j in ours:
            self.moves[j["id"]] = max(self.moves.get(j["id"], 0), j["migrations"])
            where[j["node"]] = where.get(j["node"], 0) + 1
        for node, c in where.items():
            self.nodes_seen[node] = max(self.nodes_seen.get(node, 0), c)
        self.samples.append((self.elapsed(), where))
        return where

    def running(self):
        return any(p.poll() is None for p in self.procs)

    def finish(self):
        """Waits for every job; returns (makespan, failures). Outputs and exit statuses checked."""
        failures = []
        for p, n, tag in zip(self.procs, self.iters, self.tags):
            try:
                out, err = p.communicate(timeout=max(1, MAX_WALL_S - self.elapsed()))
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                failures.append(f"{tag}: still running after {MAX_WALL_S} s")
                continue
            if p.returncode != 0:
                failures.append(f"{tag}: exit {p.returncode}: {err.strip()[-300:]}")
            elif out != expected(n, tag):
                failures.append(f"{tag}: output differs: {out!r}")
        return self.elapsed(), failures

    def kill_started(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def watch(run, at=None, action=None):
    """Polls the run once a second until its jobs end; calls action() once at `at` seconds."""
    done_action = action is None
    while run.running() and run.elapsed() < MAX_WALL_S:
        if not done_action and run.elapsed() >= at:
            run.events.append((run.elapsed(), action()))
            done_action = True
        run.poll()
        time.sleep(1)


def node_cpu_s():
    """CPU seconds each testbed node's cgroup has used so far (cgroup v1 cpuacct.usage, or v2
    cpu.stat): how much CPU the nodes were actually given, on a machine shared with others."""
    out = {}
    try:
        state = json.load(open(testbed.state_root() + "/testbed.json"))
    except OSError:
        return out
    for n in state["nodes"]:
        cg = n.get("cgroup", {}).get("cpu", "")
        for path, scale in ((os.path.join(cg, "cpuacct.usage"), 1e-9),
                            (cg.replace("/cpu/", "/cpuacct/", 1) + "/cpuacct.usage", 1e-9)):
            try:
                out[n["name"]] = int(open(path).read()) * scale
                break
            except (OSError, ValueError):
                continue
        else:
            try:
                for line in open(os.path.join(cg, "cpu.stat")):
                    if line.startswith("usage_usec"):
                        out[n["name"]] = int(line.split()[1]) * 1e-6
            except OSError:
                pass
    return out


def no_balance_wrapper(tmp):
    path = os.path.join(tmp, "osmod-no-balance")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec "{testbed.OSMO}" "$@" --no-balance\n')
    os.chmod(path, 0o755)
    return path


def one_batch(nodes, cpus, iters, prefix, balance, tmp, at=None, action=None, stopped=()):
    env_before = os.environ.get("OSMO_TESTBED_DAEMON")
    if not balance:
        os.environ["OSMO_TESTBED_DAEMON"] = no_balance_wrapper(tmp)
    try:
        with testbed.Testbed(nodes, cpus=cpus):
            for s in stopped:
                testbed.osmo("testbed", "stop", s, timeout=60)
            run = Run(prefix, iters, prefix)
            cpu0 = node_cpu_s()
            run.launch()
            try:
                testbed.wait_until("every job listed", lambda: sum(run.poll().values()) == len(iters),
                                   60, 0.5)
                watch(run, at=at, action=(lambda: action(run)) if action else None)
                makespan, failures = run.finish()
            finally:
                run.kill_started()
            cpu1 = node_cpu_s()
            run.node_cpu = {k: cpu1.get(k, 0) - v for k, v in cpu0.items()}
            run.cpu_s = sum(run.node_cpu.values())
            run.load_avg = os.getloadavg()[1]
            return run, makespan, failures
    finally:
        if env_before is None:
            os.environ.pop("OSMO_TESTBED_DAEMON", None)
        else:
            os.environ["OSMO_TESTBED_DAEMON"] = env_before


def report_line(name, value, ideal):
    return f"  {name:<34} {value:8.1f} s   {value / ideal:5.2f}x ideal"


def case_on_off(name, iters, rate, args, tmp, results):
    cap = 4 * args.cpus
    work = sum(iters) / rate
    ideal = work / cap
    bound = max(ideal, max(iters) / rate / args.cpus)  # no job runs faster than one node's share
    print(f"{name}: {len(iters)} jobs, {work:.1f} CPU s in all ({min(iters) / rate:.1f}-{max(iters) / rate:.1f} s "
          f"each), 4 nodes x {args.cpus} CPU; ideal {ideal:.1f} s (longest job alone: {bound:.1f} s)", flush=True)
    on, on_s, on_fail = one_batch(4, args.cpus, iters, f"{name}on", True, tmp)
    print(report_line("balancing on: makespan", on_s, ideal), flush=True)
    if args.skip_off:
        off, off_s, off_fail = None, float("nan"), []
    else:
        off, off_s, off_fail = one_batch(4, args.cpus, iters, f"{name}off", False, tmp)
        print(report_line("balancing off: makespan", off_s, ideal), flush=True)
    for label, r, t in (("on", on, on_s), ("off", off, off_s)):
        if r is None:
            continue
        per = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r.node_cpu.items()))
        print(f"  {label}: the nodes used {r.cpu_s:.0f} CPU s ({per}), {r.cpu_s / t:.2f} CPUs on average of the "
              f"{4 * args.cpus:.1f} configured (machine load average {r.load_avg:.1f})")
    # Where the jobs were over time (every ~10 s): how fast the spread went.
    last = -10.0
    line = []
    for t, w in on.samples:
        if t - last >= 10:
            line.append(f"{t:.0f}s " + "/".join(str(w.get(n, 0)) for n in ("n1", "n2", "n3", "n4")))
            last = t
    print("  on, jobs on n1/n2/n3/n4: " + "; ".join(line))
    moves = sorted(on.moves.values())
    print(f"  on/off {on_s / off_s:.2f}; moves per job {moves} (most {max(moves) if moves else 0}); "
          f"most jobs seen on a node at once {dict(sorted(on.nodes_seen.items()))}")
    for f in on_fail + off_fail:
        print(f"  FAILED {f}")
    results[name] = {"jobs": len(iters), "work_cpu_s": work, "ideal_s": ideal, "longest_bound_s": bound,
                     "on_s": on_s, "off_s": off_s, "on_ratio": on_s / ideal, "off_ratio": off_s / ideal,
                     "moves": moves, "failures": on_fail + off_fail,
                     "on_cpu_s": on.cpu_s, "on_node_cpu_s": on.node_cpu, "on_load_avg": on.load_avg,
                     "off_cpu_s": off.cpu_s if off else None, "off_load_avg": off.load_avg if off else None}


def case_join(iters, rate, args, tmp, results):
    work = sum(iters) / rate
    ideal4 = work / (4 * args.cpus)
    half = ideal4 / 2
    # Ideal with the 5th node from half way: half the time on 4 nodes, the rest on 5.
    ideal = half + (work - half * 4 * args.cpus) / (5 * args.cpus)
    print(f"join: {len(iters)} jobs, {work:.1f} CPU s; n5 stopped, started at {half:.1f} s; ideal {ideal:.1f} s",
          flush=True)
    joined = {}

    def start_n5(run):
        testbed.osmo("testbed", "start", "n5", timeout=60)
        joined["t"] = run.elapsed()
        return "n5 started"

    run, makespan, failures = one_batch(5, args.cpus, iters, "join", True, tmp, at=half, action=start_n5,
                                        stopped=("n5",))
    t5 = joined.get("t", -1)
    first = next((t for t, w in run.samples if w.get("n5") and t >= t5 >= 0), None)
    peak = max((w.get("n5", 0) for t, w in run.samples if t >= t5 >= 0), default=0)
    at_peak = [(t, w) for t, w in run.samples if t >= t5 >= 0 and w.get("n5", 0) == peak]
    others = 0.0
    if at_peak:
        w = at_peak[0][1]
        others = sum(c for n, c in w.items() if n != "n5") / 4
    print(report_line("makespan", makespan, ideal), flush=True)
    print(f"  n5 started at {t5:.1f} s; its first job {'%.1f s later' % (first - t5) if first else 'never'}; "
          f"peak {peak} jobs on n5 (the other nodes then: {others:.1f} on average); "
          f"moves per job {sorted(run.moves.values())}")
    for f in failures:
        print(f"  FAILED {f}")
    results["join"] = {"ideal_s": ideal, "makespan_s": makespan, "ratio": makespan / ideal, "n5_started_s": t5,
                       "n5_first_job_after_s": (first - t5) if first else None, "n5_peak": peak,
                       "others_mean_at_peak": others, "moves": sorted(run.moves.values()), "failures": failures}


def case_drain(iters, rate, args, tmp, results):
    work = sum(iters) / rate
    ideal = work / (4 * args.cpus)
    half = ideal / 2
    print(f"drain: {len(iters)} jobs, {work:.1f} CPU s; osmo drain n2 at {half:.1f} s; ideal (4 nodes) {ideal:.1f} s",
          flush=True)
    drained = {}

    def drain(run):
        r = testbed.on("n1", "drain", "n2", timeout=30)
        drained["t"] = run.elapsed()
        drained["said"] = r.stdout.strip()
        return r.stdout.strip()

    run, makespan, failures = one_batch(4, args.cpus, iters, "drain", True, tmp, at=half, action=drain)
    t = drained.get("t", -1)
    empty = next((s for s, w in run.samples if s > t >= 0 and not w.get("n2")), None)
    after = [w.get("n2", 0) for s, w in run.samples if empty is not None and s >= empty]
    print(report_line("makespan", makespan, ideal), flush=True)
    print(f"  drain at {t:.1f} s ({drained.get('said', '?')}); n2 empty "
          f"{'%.1f s later' % (empty - t) if empty else 'never'}; jobs on n2 after that: {max(after, default=0)}; "
          f"{len(iters) - len(failures)}/{len(iters)} jobs intact")
    for f in failures:
        print(f"  FAILED {f}")
    results["drain"] = {"ideal_s": ideal, "makespan_s": makespan, "ratio": makespan / ideal, "drain_at_s": t,
                        "n2_empty_after_s": (empty - t) if empty else None, "n2_jobs_after_empty": max(after, default=0),
                        "failures": failures}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("osmo")
    ap.add_argument("--cases", default="equal,mixed,join,drain")
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--cpu-s", type=float, default=6.0)
    ap.add_argument("--cpus", type=float, default=0.5)
    ap.add_argument("--mixed-jobs", type=int, default=8)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--skip-off", action="store_true", help="equal/mixed: only the run with balancing on")
    args = ap.parse_args()
    testbed.OSMO = args.osmo
    if os.geteuid() != 0:
        sys.exit("balance_bench: needs root (network namespaces and cgroups)")
    cases = args.cases.split(",")
    for c in cases:
        if c not in ("equal", "mixed", "join", "drain"):
            sys.exit(f"balance_bench: unknown case '{c}' (equal, mixed, join, drain)")
    rate = calibrate()
    print(f"calibration: {rate / 1e6:.2f} M iterations per CPU second", flush=True)
    same = [int(args.cpu_s * rate)] * args.jobs
    k = max(args.mixed_jobs, 2)
    mixed = [int((1 + 29 * i / (k - 1)) * rate) for i in range(k)]
    results = {"calibration_iters_per_cpu_s": rate, "cpus_per_node": args.cpus}
    with tempfile.TemporaryDirectory(prefix="balance-bench-") as tmp:
        for c in cases:
            if c == "equal":
                case_on_off("equal", same, rate, args, tmp, results)
            elif c == "mixed":
                case_on_off("mixed", mixed, rate, args, tmp, results)
            elif c == "join":
                case_join(same, rate, args, tmp, results)
            elif c == "drain":
                case_drain(same, rate, args, tmp, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    failed = [c for c, r in results.items() if isinstance(r, dict) and r.get("failures")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
