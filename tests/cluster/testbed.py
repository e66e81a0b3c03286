# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for integration tests that drive a real osmo testbed (nodes in network namespaces).

Used by the cluster tests of every part. Every wait is bounded; a testbed brought up by a test is
always taken down again, also when the test fails.
"""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

OSMO = os.environ.get("OSMO_BIN", "osmo")
SKIP = 77
# The suite runs its own testbed instance ("suite", docs/testbed.md), so a demo or a developer's
# testbed (the default instance) can run beside it; OSMO_TESTBED_INSTANCE picks another one (two
# engineers on one machine each use their own). Every `osmo testbed` command the tests run
# inherits the variable. OSMO_TESTBED_INSTANCE= (empty) is the default instance.
INSTANCE = os.environ.setdefault("OSMO_TESTBED_INSTANCE", "suite")
# One testbed per instance: every test that brings one up holds the instance's lock for its whole
# run (ctest's RESOURCE_LOCK only orders the tests of one ctest run; this also covers two runs).
# The default instance's lock keeps its old name (the testbed mechanics test and benches use it).
LOCK_FILE = "/run/osmo-testbed-tests.lock" if not INSTANCE else f"/run/osmo-testbed-tests-{INSTANCE}.lock"
# OSMO_TESTBED_LOCK_WAIT (seconds) lets engineers sharing one machine wait longer.
LOCK_WAIT_S = int(os.environ.get("OSMO_TESTBED_LOCK_WAIT", "300"))


def state_root():
    """The instance's state directory (docs/testbed.md: the default path, plus -NAME)."""
    return f"/run/osmo/testbed-{INSTANCE}" if INSTANCE else "/run/osmo/testbed"


def bridge_netns():
    """The namespace holding the instance's bridge (and the host ends vK of the nodes' links)."""
    return f"osmo-tb-{INSTANCE}-br" if INSTANCE else "osmo-tb-br"


def kill_node_cgroup(node):
    """The whole node dies: every process in its cgroup (daemon, shepherds, jobs) gets SIGKILL,
    a few passes over the cgroup so that processes forked meanwhile go too. Only processes of our
    own testbed's cgroup are touched."""
    state = json.load(open(state_root() + "/testbed.json"))
    cg = next(n["cgroup"]["cpu"] for n in state["nodes"] if n["name"] == node)
    for _ in range(5):
        for pid in open(os.path.join(cg, "cgroup.procs")).read().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def require_root(what):
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        print(f"FAIL: {what} needs root, and CI must run it", file=sys.stderr)
        sys.exit(1)
    print(f"SKIP: {what} needs root (run as root, or in CI)", file=sys.stderr)
    sys.exit(SKIP)


def osmo(*args, check=True, timeout=60, **kw):
    r = subprocess.run([OSMO, *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"osmo {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


def on(node, *args, check=True, timeout=60):
    """Runs `osmo ARGS` inside a testbed node (its namespace, cgroup and control socket)."""
    return osmo("testbed", "exec", node, "--", OSMO, *args, check=check, timeout=timeout)


def nodes_seen_by(node):
    r = on(node, "nodes", "--json", check=False, timeout=10)
    if r.returncode != 0:
        return None
    return {n["name"]: n for n in json.loads(r.stdout)}


def wait_until(what, predicate, timeout_s, interval_s=0.1):
    """Polls predicate() until it returns a truthy value; returns (value, seconds taken)."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout_s:
        last = predicate()
        if last:
            return last, time.monotonic() - start
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last={last!r}")


class Testbed:
    """Context manager: `with Testbed(4, cpus=0.5) as tb:` brings a testbed up and always down."""

    def __init__(self, n, cpus=None):
        self.n = n
        self.cpus = cpus
        self.names = [f"n{i}" for i in range(1, n + 1)]

    def __enter__(self):
        self._lock = open(LOCK_FILE, "w")
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"another test held {LOCK_FILE} for {LOCK_WAIT_S}s")
                time.sleep(0.2)
        osmo("testbed", "down", check=False)  # leftovers of a crashed earlier run
        args = ["testbed", "up", "-n", str(self.n)]
        if self.cpus is not None:
            args += ["--cpus-per-node", str(self.cpus)]
        osmo(*args, timeout=120)
        return self

    def __exit__(self, *exc):
        try:
            r = osmo("testbed", "down", check=False, timeout=120)
            if r.returncode != 0:
                print(f"testbed down failed: {r.stderr}", file=sys.stderr)
        finally:
            self._lock.close()  # releases the flock
        return False

    def states_seen_by(self, node):
        seen = nodes_seen_by(node)
        return None if seen is None else {k: v["state"] for k, v in seen.items()}

    def all_see(self, expected, observers=None):
        """True when every observer sees exactly `expected` (name -> state) for those names."""
        for o in observers or self.names:
            states = self.states_seen_by(o)
            if states is None:
                return False
            for name, state in expected.items():
                if states.get(name) != state:
                    return False
        return True


def run_cases(cases):
    """Runs the case named on the command line (ctest registers one test per case)."""
    name = sys.argv[1]
    try:
        cases[name]()
    except AssertionError as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - any error fails the case, with its type named
        print(f"FAIL {name}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"PASS {name}")
