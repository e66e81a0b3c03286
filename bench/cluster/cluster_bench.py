#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Benchmark of issue 3 on the 4-node testbed: time to full convergence, failure-detection time,
and the daemon's CPU and memory use at rest. Needs root (namespaces, cgroups).

Every figure is printed next to a baseline measured in the same run:
- convergence and detection: the simulator (osmo-sim) running the same gossip code with the same
  timers on a virtual network (all nodes started at once); the ratio is what the real daemons,
  sockets and scheduler add. Convergence is timed from the moment `testbed up` has started every
  daemon and seen its control socket (the daemons start one after another within that time).
- CPU at rest: a process that only wakes up as often as the daemon's main loop (every 10 ms);
  the ratio is what the daemon's work costs beyond its wake-ups.
- memory: the resident size of an idle `python3 -c` interpreter, a familiar small process.
Usage: cluster_bench.py OSMO_BIN OSMO_SIM_BIN [--rounds R]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "cluster"))
import testbed  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("osmo")
ap.add_argument("osmo_sim")
ap.add_argument("--rounds", type=int, default=3)
args = ap.parse_args()
testbed.OSMO = args.osmo
if os.geteuid() != 0:
    sys.exit("cluster_bench: needs root (network namespaces and cgroups)")

NAMES = ["n1", "n2", "n3", "n4"]
ALIVE = {n: "alive" for n in NAMES}


def sim(scenario, *extra):
    r = subprocess.run([args.osmo_sim, "-s", scenario, "-n", "4", "--json", *extra],
                       capture_output=True, text=True, check=True, timeout=120)
    return json.loads(r.stdout)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def daemon_pids():
    out = testbed.osmo("testbed", "list", "--json").stdout
    return {n["node"]: n["pid"] for n in json.loads(out)}


converge_s, detect_s = [], []
cpu_pct, rss = [], []
for r in range(args.rounds):
    with testbed.Testbed(4, cpus=0.5) as tb:
        t0 = time.monotonic()
        testbed.wait_until("convergence", lambda: tb.all_see(ALIVE), timeout_s=30, interval_s=0.02)
        converge_s.append(time.monotonic() - t0)
        time.sleep(3)  # at rest
        pids = daemon_pids()
        hz = os.sysconf("SC_CLK_TCK")
        before = {n: cpu_ticks(p) for n, p in pids.items()}
        time.sleep(10)
        cpu_pct += [100.0 * (cpu_ticks(p) - before[n]) / hz / 10 for n, p in pids.items()]
        rss += [rss_kb(p) for p in pids.values()]
        testbed.osmo("testbed", "pause", "n4")
        t0 = time.monotonic()
        testbed.wait_until("n4 dead", lambda: tb.all_see({"n4": "dead"}, observers=NAMES[:3]),
                           timeout_s=30, interval_s=0.02)
        detect_s.append(time.monotonic() - t0)
        testbed.osmo("testbed", "resume", "n4")

# Baselines, same run.
sim_conv = sim("convergence", "--join-spread-ms", "0")["converge_ms"] / 1000
sim_fail = sim("failure", "-k", "1")["detect_dead_ms"] / 1000
waker = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.01)"])
time.sleep(1)
b0 = cpu_ticks(waker.pid)
time.sleep(10)
waker_pct = 100.0 * (cpu_ticks(waker.pid) - b0) / os.sysconf("SC_CLK_TCK") / 10
waker.kill()
waker.wait()
idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
time.sleep(1)
idle_rss = rss_kb(idle.pid)
idle.kill()
idle.wait()

conv, det = statistics.median(converge_s), statistics.median(detect_s)
cpu, mem = statistics.median(cpu_pct), statistics.median(rss)
print(f"rounds={args.rounds}")
print(f"convergence_s median={conv:.3f} all={[round(x, 3) for x in converge_s]} "
      f"sim_baseline_s={sim_conv:.3f} ratio={conv / sim_conv:.2f}")
print(f"failure_detection_s median={det:.3f} all={[round(x, 3) for x in detect_s]} "
      f"sim_baseline_s={sim_fail:.3f} ratio={det / sim_fail:.2f}")
print(f"daemon_cpu_at_rest_pct median={cpu:.2f} baseline_100hz_waker_pct={waker_pct:.2f} "
      f"ratio={cpu / waker_pct if waker_pct > 0 else float('inf'):.2f}")
print(f"daemon_rss_mb median={mem / 1024:.1f} baseline_idle_python3_mb={idle_rss / 1024:.1f} "
      f"ratio={mem / idle_rss:.2f}")
