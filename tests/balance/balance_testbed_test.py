#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The balancing loop on a real testbed (root): jobs started on one node spread over the cluster
by themselves, without ping-pong, with outputs and exit statuses intact; `osmo drain` empties a
node of its guests while a pinned (--no-migrate) job stays and the node takes no new work.

One ctest per case (CMakeLists.txt); each brings a testbed up and always down again. Every job
is bounded (a fixed amount of work, and a wall-clock bound of its own); processes are only ever
killed by the pids we started.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from testbed import OSMO, Testbed, nodes_seen_by, osmo, state_root, on, require_root, run_cases, wait_until  # noqa: E402

CPUS = 0.5  # per node

# A CPU-bound job with a known output: the sum of i*i for i < N, computed the slow way. It gives
# up (exit 3) after MAX_WALL_S so that nothing runs unbounded whatever happens to the testbed.
MAX_WALL_S = 400
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


def popen_run(home, *cmd):
    return subprocess.Popen([OSMO, "testbed", "exec", home, "--", OSMO, "run", *cmd],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def jobs(observer):
    r = on(observer, "ps", "--json", check=False, timeout=30)
    return json.loads(r.stdout) if r.returncode == 0 else []


def ours(observer, tag_prefix):
    return [j for j in jobs(observer) if tag_prefix in j["cmd"]]


def balance_log(names, words=("moving to", "not moved", "refused", "reserved", "failed", "drain")):
    """The balancing lines of every node's daemon log (the testbed keeps them until it goes down)."""
    lines = []
    for name in names:
        try:
            with open(f"{state_root()}/{name}/osmod.log") as f:
                lines += [l.rstrip() for l in f if "balance" in l and any(w in l for w in words)]
        except OSError:
            pass
    return lines


def kill_started(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def finish_all(procs, want, timeout_s):
    deadline = time.monotonic() + timeout_s
    for p, w in zip(procs, want):
        out, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
        assert p.returncode == 0, f"job exited {p.returncode}: {err.strip()}"
        assert out == w, f"output differs: {out!r} vs {w!r}"


def spread_four():
    """Four CPU-bound jobs started at n1 with --node n1: the balancer spreads them to n2 and n3
    within 40 s, no job moves more than twice, every output and exit status is intact."""
    n = 60_000_000
    with Testbed(3, cpus=CPUS):
        tags = [f"spread{k}" for k in range(4)]
        start = time.monotonic()
        procs = [popen_run("n1", "--node", "n1", "python3", "-c", JOB, str(n), t) for t in tags]
        try:
            wait_until("4 jobs listed", lambda: len(ours("n1", "spread")) == 4, 30, 0.5)
            max_moves = {}
            placed = {}

            def spread():
                js = ours("n1", "spread")
                for j in js:
                    max_moves[j["id"]] = max(max_moves.get(j["id"], 0), j["migrations"])
                where = {j["node"] for j in js}
                placed.update({j["id"]: j["node"] for j in js})
                return "n2" in where and "n3" in where and where
            where, took = wait_until("jobs running on n2 and n3", spread, 40, 0.5)
            print(f"  spread to {sorted(where)} {time.monotonic() - start:.1f} s after the start "
                  f"({took:.1f} s after all four were listed)")
            # Watch the moves until the jobs end: never more than two per job.
            while any(p.poll() is None for p in procs) and time.monotonic() - start < MAX_WALL_S:
                for j in ours("n1", "spread"):
                    max_moves[j["id"]] = max(max_moves.get(j["id"], 0), j["migrations"])
                time.sleep(1)
            finish_all(procs, [expected(n, t) for t in tags], 60)
            makespan = time.monotonic() - start
            print(f"  makespan {makespan:.1f} s; moves per job {sorted(max_moves.values())}")
            log = balance_log(["n1", "n2", "n3"])
            for line in log:
                print("   ", line)
            # Issue 10: the load figures decisions rest on are under 1.5 s old on average (each
            # "moving to" line says how old the target's figure was).
            ages = [int(m.group(1)) for m in (re.search(r"ours was (\d+) ms old", l) for l in log) if m]
            assert ages, f"no move logged its target's figure age: {log}"
            print(f"  target load figures {sum(ages) / len(ages):.0f} ms old on average (max {max(ages)}) "
                  f"over {len(ages)} moves")
            assert sum(ages) / len(ages) < 1500, ages
            assert max(max_moves.values()) <= 2, f"a job moved more than twice: {max_moves}"
            assert sum(max_moves.values()) >= 2, f"too few moves to spread: {max_moves}"
        finally:
            kill_started(procs)


def drain_node():
    """Two guests on n2 (started from n1 with --node n2) and one pinned there (--no-migrate):
    `osmo drain n2` moves the two away, the pinned one stays (osmo migrate refuses it without
    --force), n2 shows as draining and a new job from n2 is placed elsewhere; outputs intact."""
    n = 40_000_000
    with Testbed(3, cpus=CPUS):
        procs = [popen_run("n1", "--node", "n2", "python3", "-c", JOB, str(n), f"drain{k}") for k in range(2)]
        procs.append(popen_run("n1", "--node", "n2", "--no-migrate", "python3", "-c", JOB, str(n), "pinned"))
        want = [expected(n, "drain0"), expected(n, "drain1"), expected(n, "pinned")]
        try:
            wait_until("3 jobs on n2", lambda: len([j for j in ours("n1", "drain") + ours("n1", "pinned")
                                                       if j["node"] == "n2"]) == 3, 30, 0.5)
            pinned = ours("n1", "pinned")[0]
            # osmo ps shows the pinned job as not movable, and says why.
            assert pinned.get("pinned") is True and pinned.get("movable") is False, pinned
            assert "--no-migrate" in (pinned.get("why_not") or ""), pinned
            table = on("n1", "ps", timeout=30).stdout.splitlines()
            head = table[0].split()
            row = [l.split() for l in table if l.startswith(pinned["id"])][0]
            assert row[head.index("MOVE")] == "no", table
            r = on("n1", "migrate", pinned["id"], "n3", check=False, timeout=60)
            assert r.returncode != 0 and "--no-migrate" in r.stderr, (r.returncode, r.stderr)
            t0 = time.monotonic()
            r = on("n1", "drain", "n2", timeout=30)
            print(f"  {r.stdout.strip()}")
            assert "2 guest job(s) left" in r.stdout, r.stdout  # the pinned one is no guest to move

            def drained():
                js = ours("n1", "drain")
                return len(js) == 2 and all(j["node"] != "n2" for j in js) and js
            js, took = wait_until("the guests left n2", drained, 40, 0.5)
            print(f"  n2 drained in {took:.1f} s: guests now on {sorted(j['node'] for j in js)}")
            assert ours("n1", "pinned")[0]["node"] == "n2", "the pinned job moved"
            seen = {n["name"]: n for n in json.loads(on("n1", "nodes", "--json", timeout=30).stdout)}
            assert seen["n2"].get("draining") is True, seen["n2"]
            table = on("n3", "nodes", timeout=30).stdout
            assert any(l.startswith("n2 ") and " draining " in l for l in table.splitlines()), table
            # A job started at n2 without --node is placed elsewhere (n2 takes no new work).
            r = subprocess.run([OSMO, "testbed", "exec", "n2", "--", OSMO, "run", "-v", "python3", "-c", JOB,
                                "1000", "probe"], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0 and r.stdout == expected(1000, "probe"), (r.returncode, r.stdout, r.stderr)
            m = re.search(r"runs on (\S+)", r.stderr)
            assert m and m.group(1) != "n2", f"a job started at draining n2 ran on it: {r.stderr!r}"
            print(f"  a job started at draining n2 ran on {m.group(1)}")
            finish_all(procs, want, MAX_WALL_S)
            print(f"  all three ended intact {time.monotonic() - t0:.1f} s after the drain")
            for line in balance_log(["n1", "n2", "n3"]):
                print("   ", line)
        finally:
            kill_started(procs)


def sigterm_drains():
    """SIGTERM to n2's daemon with a guest on it: the guest moves away first (within the drain
    grace time), then n2 leaves the cluster; the job ends intact elsewhere."""
    n = 40_000_000
    with Testbed(3, cpus=CPUS):
        procs = [popen_run("n1", "--node", "n2", "python3", "-c", JOB, str(n), "term")]
        try:
            wait_until("the job on n2", lambda: [j for j in ours("n1", "term") if j["node"] == "n2"], 30, 0.5)
            time.sleep(1.5)  # one balancing tick: n2 counts its guest
            listed = json.loads(subprocess.run([OSMO, "testbed", "list", "--json"], capture_output=True,
                                               text=True, check=True, timeout=30).stdout)
            pid = [x["pid"] for x in listed if x["node"] == "n2"][0]
            assert pid, listed
            t0 = time.monotonic()
            os.kill(pid, signal.SIGTERM)  # the daemon this test's testbed started
            js, took = wait_until("the job off n2", lambda: [j for j in ours("n1", "term") if j["node"] != "n2"],
                                  30, 0.2)
            print(f"  the guest moved to {js[0]['node']} {took:.1f} s after SIGTERM")
            _, left = wait_until("n2 gone from the cluster",
                                 lambda: (nodes_seen_by("n1") or {}).get("n2", {}).get("state") in ("left", "dead"),
                                 30, 0.2)
            print(f"  n2 left {time.monotonic() - t0:.1f} s after SIGTERM")
            finish_all(procs, [expected(n, "term")], MAX_WALL_S)
            log = balance_log(["n2"], words=("moving to", "drained", "leaving", "guest"))
            log += [l.rstrip() for l in open(state_root() + "/n2/osmod.log") if "daemon:" in l and "leav" in l]
            for line in log:
                print("   ", line)
            assert any("drained: no guest job left" in l for l in log), log
        finally:
            kill_started(procs)


# Grows to MB megabytes (touched) in its first seconds, then computes N iterations; prints a sum
# over its memory and the computation. Bounded by MAX_WALL_S like JOB.
MEM_JOB = """
import sys, time
mb, n = int(sys.argv[1]), int(sys.argv[2])
t0 = time.monotonic()
blocks = []
for k in range(mb):
    blocks.append(bytearray(b"%c" % (k % 251)) * (1 << 20))
s = 0
for i in range(n):
    s += i * i
    if i % 1000000 == 0 and time.monotonic() - t0 > MAX_WALL_S:
        sys.exit(3)
print("mem", sum(b[-1] for b in blocks), s)
""".replace("MAX_WALL_S", str(MAX_WALL_S))


def node_memory_cgroup(node):
    """The memory cgroup directory (v1) of a testbed node's daemon, where its jobs run too."""
    pid = open(f"{state_root()}/{node}/osmod.pid").read().split()[0]
    for line in open(f"/proc/{pid}/cgroup"):
        _, controllers, path = line.strip().split(":", 2)
        if "memory" in controllers.split(","):
            return "/sys/fs/cgroup/memory" + path
    return None


def memory_ushering():
    """n2's memory cgroup is limited to 600 MiB; a job there grows to 540 MiB (with the ~11 MiB of
    python and its shepherd, pressure ~0.92 > 0.9): once it has run long enough to repay the copy
    (4 x 5.5 s of CPU), the balancer moves it to a node with room, before the limit hits; output
    intact. (With 256 MiB and a 228 MiB job the move started but the checkpoint's own buffers,
    charged to the same cgroup, pushed it over the limit: the kernel killed the job.)"""
    mb, n = 540, 400_000_000
    with Testbed(3, cpus=CPUS):
        cg = node_memory_cgroup("n2")
        if cg is None or not os.path.exists(os.path.join(cg, "memory.limit_in_bytes")):
            print("SKIP: no cgroup v1 memory controller for the testbed nodes", file=sys.stderr)
            sys.exit(77)
        with open(os.path.join(cg, "memory.limit_in_bytes"), "w") as f:
            f.write(str(600 << 20))
        want = f"mem {sum(k % 251 for k in range(mb))} {(n - 1) * n * (2 * n - 1) // 6}\n"
        t0 = time.monotonic()
        procs = [popen_run("n1", "--node", "n2", "python3", "-c", MEM_JOB, str(mb), str(n))]
        try:
            try:
                def off_n2():
                    assert procs[0].poll() is None, f"the job ended on n2 (exit {procs[0].returncode})"
                    return [j for j in ours("n1", "python3 -c") if j["node"] != "n2"]
                js, took = wait_until("the job off n2", off_n2, 240, 1)
            except AssertionError:
                print("  n2 as n1 sees it:", (nodes_seen_by("n1") or {}).get("n2"), file=sys.stderr)
                print("  jobs:", ours("n1", "python3 -c"), file=sys.stderr)
                for line in balance_log(["n2"], words=("job=",)):
                    print("   ", line, file=sys.stderr)
                raise
            print(f"  moved to {js[0]['node']} {time.monotonic() - t0:.1f} s after the start "
                  f"(rss {js[0].get('rss_mb', 0):.0f} MB)")
            finish_all(procs, [want], MAX_WALL_S)
            log = balance_log(["n2", "n1", "n3"], words=("memory",))
            for line in log:
                print("   ", line)
            assert any("(memory)" in l and "moving to" in l for l in log), log
        finally:
            kill_started(procs)


def restart_with_config(node, toml_text):
    """Restarts a testbed node's daemon with a TOML configuration (--config), through the
    testbed's daemon override (OSMO_TESTBED_DAEMON): a wrapper that adds the option."""
    d = f"{state_root()}/{node}"
    conf = f"{d}/extra.toml"
    with open(conf, "w") as f:
        f.write(toml_text)
    wrapper = f"{d}/osmod-with-config"
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nexec "{OSMO}" "$@" --config "{conf}"\n')
    os.chmod(wrapper, 0o755)
    osmo("testbed", "stop", node, timeout=60)
    osmo("testbed", "start", node, timeout=60, env={**os.environ, "OSMO_TESTBED_DAEMON": wrapper})


def balance_false():
    """n2 runs with `balance = false` in its configuration file. (1) Four jobs started on n2 stay
    there for 30 s while n1 and n3 are idle (without the key the balancer spreads such jobs within
    ~11 s: spread_four). (2) `osmo migrate` by hand still moves them away, to n1. (3) n1, now
    overloaded, spreads them to n3 and never to the idle n2, which refuses automatic arrivals.
    Outputs and exit statuses intact."""
    n = 150_000_000
    with Testbed(3, cpus=CPUS) as tb:
        restart_with_config("n2", "balance = false\n")
        wait_until("n2 back in every view", lambda: tb.all_see({"n1": "alive", "n2": "alive", "n3": "alive"}),
                   60, 0.5)
        status = json.loads(on("n2", "status", timeout=30).stdout)
        assert status["balance"] is False, status
        # n1 learns it from n2's gossiped load (the flag rides with it). The view n1 holds may still
        # be the restarted n2's earlier load (balance true) for a gossip round or two: wait for the
        # new one, bounded.
        n2_seen, _ = wait_until("n1 sees n2's balance = false",
                                lambda: (nodes_seen_by("n1") or {}).get("n2", {}).get("balance") is False
                                and nodes_seen_by("n1")["n2"], 30, 0.5)
        print(f"  n2 as n1 sees it: balance={n2_seen.get('balance')}")
        tags = [f"keep{k}" for k in range(4)]
        procs = [popen_run("n1", "--node", "n2", "python3", "-c", JOB, str(n), t) for t in tags]
        try:
            wait_until("4 jobs on n2", lambda: len([j for j in ours("n1", "keep") if j["node"] == "n2"]) == 4,
                       30, 0.5)
            # (1) n2 keeps its jobs: 30 s, polled every second.
            t0 = time.monotonic()
            while time.monotonic() - t0 < 30:
                js = ours("n1", "keep")
                away = [j for j in js if j["node"] != "n2" or j["migrations"] != 0]
                assert not away, f"a job left n2 (balance = false): {away}"
                assert len(js) == 4, f"a job ended early: {js}"
                time.sleep(1)
            print("  n2 kept its 4 jobs for 30 s with n1 and n3 idle")
            # (2) by hand, it always works.
            ids = [j["id"] for j in ours("n1", "keep")]
            for i in ids:
                on("n1", "migrate", i, "n1", timeout=120)
            assert all(j["node"] == "n1" for j in ours("n1", "keep")), ours("n1", "keep")
            print("  osmo migrate moved all 4 from n2 to n1 by hand")
            # (3) n1 spreads to n3 only; n2 takes nothing.
            t1 = time.monotonic()
            to_n3 = 0
            while time.monotonic() - t1 < 30 and any(p.poll() is None for p in procs):
                js = ours("n1", "keep")
                on_n2 = [j for j in js if j["node"] == "n2"]
                assert not on_n2, f"an automatic migration reached n2 (balance = false): {on_n2}"
                to_n3 = max(to_n3, len([j for j in js if j["node"] == "n3"]))
                time.sleep(1)
            log = balance_log(["n1", "n2", "n3"])
            for line in log:
                print("   ", line)
            assert to_n3 >= 1, f"n1 never balanced to n3 (nothing shows the loop worked): {log}"
            print(f"  n1 sent {to_n3} job(s) to n3 and none to n2 in 30 s")
            assert not any("n2" in l and "reserved" in l for l in balance_log(["n2"])), "n2 reserved a move"
            finish_all(procs, [expected(n, t) for t in tags], MAX_WALL_S)
            print("  all four ended intact")
        finally:
            kill_started(procs)


if __name__ == "__main__":
    require_root("the balancing testbed tests")
    run_cases({"spread_four": spread_four, "drain_node": drain_node, "sigterm_drains": sigterm_drains,
               "memory_ushering": memory_ushering, "balance_false": balance_false})
