#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 3 integration tests: membership, failure detection and load gossip on a real testbed.

Each case brings up its own 4-node testbed (nodes n1..n4 in network namespaces, each with half a
CPU), checks one behaviour from every node's point of view, and takes the testbed down.
Usage: cluster_test.py CASE   (ctest runs one test per case)
"""
import json
import subprocess
import time

from testbed import OSMO, Testbed, bridge_netns, nodes_seen_by, on, osmo, require_root, run_cases, wait_until

N = 4
ALIVE = {f"n{i}": "alive" for i in range(1, N + 1)}


def loads_known(tb):
    """True when every node knows every node's load, no older than 5 s."""
    for o in tb.names:
        seen = nodes_seen_by(o)
        if seen is None or any(n not in seen or seen[n]["load"] is None or seen[n]["age_ms"] > 5000
                               for n in tb.names):
            return False
    return True


def converge():
    with Testbed(N, cpus=0.5) as tb:
        _, took = wait_until("all 4 nodes alive everywhere", lambda: tb.all_see(ALIVE), timeout_s=5)
        print(f"converged in {took:.2f}s")
        # Every node also has a load entry for every other node, with a bounded age.
        wait_until("load known everywhere", lambda: loads_known(tb), timeout_s=5)
        seen = nodes_seen_by("n1")
        for n in tb.names:
            assert 0.4 <= seen[n]["cpus"] <= 0.6, f"{n} cpus {seen[n]['cpus']} (quota is 0.5)"
            assert seen[n]["mem_free_mb"] > 0, f"{n} mem_free_mb {seen[n]['mem_free_mb']}"


def failure_and_recovery():
    with Testbed(N, cpus=0.5) as tb:
        wait_until("convergence", lambda: tb.all_see(ALIVE), timeout_s=5)
        others = ["n1", "n2", "n4"]
        osmo("testbed", "pause", "n3")
        t0 = time.monotonic()
        suspected_by = set()
        false_deaths = []

        def n3_dead_everywhere():
            dead = 0
            for o in others:
                states = tb.states_seen_by(o)
                if states is None:
                    return False
                if states.get("n3") == "suspect":
                    suspected_by.add(o)
                for name in others:
                    if states.get(name) != "alive":
                        false_deaths.append((o, name, states.get(name)))
                dead += states.get("n3") == "dead"
            return dead == len(others)

        _, took = wait_until("n3 dead everywhere", n3_dead_everywhere, timeout_s=20, interval_s=0.05)
        print(f"n3 declared dead by all in {took:.2f}s; seen suspect by {sorted(suspected_by)}")
        assert suspected_by, "n3 was never observed as suspect before dead"
        assert not false_deaths, f"false deaths: {false_deaths[:5]}"

        osmo("testbed", "resume", "n3")
        _, took = wait_until("n3 alive again everywhere", lambda: tb.all_see(ALIVE), timeout_s=10)
        print(f"n3 alive again everywhere {took:.2f}s after SIGCONT")

        # A crash and a restart with fresh state: the node rejoins.
        osmo("testbed", "stop", "n4")
        wait_until("n4 dead", lambda: tb.all_see({"n4": "dead"}, observers=["n1", "n2", "n3"]), timeout_s=20)
        osmo("testbed", "start", "n4")
        _, took = wait_until("n4 alive again everywhere", lambda: tb.all_see(ALIVE), timeout_s=10)
        print(f"n4 alive again everywhere {took:.2f}s after restart")


def graceful_leave():
    with Testbed(N, cpus=0.5) as tb:
        wait_until("convergence", lambda: tb.all_see(ALIVE), timeout_s=5)
        on("n2", "leave", timeout=15)
        observers = ["n1", "n3", "n4"]
        seen_dead = []

        def left_everywhere():
            states = [tb.states_seen_by(o) for o in observers]
            if any(s is None for s in states):
                return False
            seen_dead.extend(o for o, s in zip(observers, states) if s.get("n2") == "dead")
            return all(s.get("n2") == "left" for s in states)

        _, took = wait_until("n2 left everywhere", left_everywhere, timeout_s=5, interval_s=0.05)
        print(f"n2 shown as left everywhere in {took:.2f}s")
        assert not seen_dead, f"a graceful leave was taken for a failure by {seen_dead}"
        # It stays left (not turned into dead) for a while.
        time.sleep(3)
        assert tb.all_see({"n2": "left"}, observers=observers), "n2 no longer shown as left"


def load_rises():
    with Testbed(N, cpus=0.5) as tb:
        wait_until("convergence", lambda: tb.all_see(ALIVE), timeout_s=5)
        wait_until("load known everywhere", lambda: loads_known(tb), timeout_s=5)
        base = nodes_seen_by("n1")
        print(f"load at rest: " + ", ".join(f"{n}={base[n]['load']:.2f}" for n in tb.names))
        # Two bounded CPU-bound loops inside n2 (12 s at most, then they stop by themselves).
        burner = subprocess.Popen(
            [OSMO, "testbed", "exec", "n2", "--", "sh", "-c",
             "timeout 12 sh -c 'while :; do :; done' & timeout 12 sh -c 'while :; do :; done' & wait"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def n2_loaded():
                seen = nodes_seen_by("n1")
                return seen and seen["n2"]["load"] is not None and seen["n2"]["load"] >= 1.5 and seen
            seen, took = wait_until("n2's load to rise as seen from n1", n2_loaded, timeout_s=8)
            print(f"after {took:.2f}s n1 sees: " + ", ".join(f"{n}={seen[n]['load']:.2f}" for n in tb.names))
            for quiet in ("n3", "n4"):
                assert seen[quiet]["load"] < 1.0, f"{quiet} load {seen[quiet]['load']} while only n2 is busy"
        finally:
            burner.wait(timeout=30)
        def n2_calm():
            seen = nodes_seen_by("n1")
            return seen and seen["n2"]["load"] < 0.5
        _, took = wait_until("n2's load to fall back", n2_calm, timeout_s=30)
        print(f"n2's load fell back {took:.2f}s after the loops ended")


SENDER = r"""
import os, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(50):
    u.sendto(os.urandom(1 + i * 20), (host, port))      # random bytes of many sizes
u.sendto(b"", (host, port))                             # empty datagram
t = socket.create_connection((host, port), timeout=5)   # a peer stream that is not osmo
t.sendall(b"\x10\x00\x00\x00GET / HTTP/1.1\r\n\r\n")
t.recv(100)
"""


def bad_messages_dropped():
    """Garbage datagrams and streams from inside the cluster are dropped and counted."""
    with Testbed(N, cpus=0.5) as tb:
        wait_until("convergence", lambda: tb.all_see(ALIVE), timeout_s=5)
        before = json.loads(on("n2", "status").stdout)
        addr = nodes_seen_by("n1")["n2"]["addr"]
        host, port = addr.rsplit(":", 1)
        osmo("testbed", "exec", "n1", "--", "python3", "-c", SENDER, host, port)
        time.sleep(0.5)
        after = json.loads(on("n2", "status").stdout)
        g0, g1 = before["gossip"], after["gossip"]
        dropped = sum(g1[k] - g0[k] for k in ("dropped_bad_mac", "dropped_bad_version", "dropped_malformed"))
        print(f"gossip drops: {dict((k, g1[k] - g0[k]) for k in g1 if k.startswith('dropped'))}")
        assert dropped >= 50, f"only {dropped} of 51 garbage datagrams counted as dropped"
        assert after["peer"]["refused_auth"] >= before["peer"]["refused_auth"] + 1, after["peer"]
        # The view is unharmed: still exactly the four nodes, all alive.
        assert tb.all_see(ALIVE), "the view changed after garbage"
        assert set(nodes_seen_by("n2")) == set(ALIVE), nodes_seen_by("n2")


# Runs in the bridge's namespace: a raw packet socket sees every frame crossing the testbed's
# bridge. Prints, one per line, the hex of distinct gossip datagrams (UDP payloads starting with
# the magic "OSMG") sent to HOST:PORT, until COUNT are seen or 10 s have passed.
CAPTURE = r"""
import socket, sys, time
host, port, count = socket.inet_aton(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))   # ETH_P_ALL
s.settimeout(0.5)
seen, deadline = [], time.monotonic() + 10
while len(seen) < count and time.monotonic() < deadline:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    if frame[12:14] != b"\x08\x00" or frame[23] != 17 or frame[30:34] != host:
        continue
    udp = 14 + (frame[14] & 0x0F) * 4
    if int.from_bytes(frame[udp + 2:udp + 4], "big") != port:
        continue
    payload = frame[udp + 8:]
    if payload[:4] == b"OSMG" and payload.hex() not in seen:
        seen.append(payload.hex())
for h in seen:
    print(h)
"""

REPLAY = r"""
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for h in sys.argv[3:]:
    u.sendto(bytes.fromhex(h), (sys.argv[1], int(sys.argv[2])))
"""


def replay_dropped():
    """A gossip datagram captured on the wire is unreadable, and replayed to its receiver it is
    dropped and counted as a replay, leaving the view as it was (issue 13)."""
    with Testbed(N, cpus=0.5) as tb:
        wait_until("convergence", lambda: tb.all_see(ALIVE), timeout_s=5)
        wait_until("load known everywhere", lambda: loads_known(tb), timeout_s=5)
        seen = nodes_seen_by("n1")
        addrs = {n: seen[n]["addr"] for n in tb.names}
        host, port = addrs["n2"].rsplit(":", 1)
        cap = subprocess.run(["ip", "netns", "exec", bridge_netns(), "python3", "-c", CAPTURE, host, port, "8"],
                             capture_output=True, text=True, timeout=30)
        assert cap.returncode == 0, f"capture failed: {cap.stderr.strip()}"
        captured = cap.stdout.split()
        assert len(captured) >= 4, f"captured only {len(captured)} gossip datagrams to n2"
        for h in captured:
            d = bytes.fromhex(h)
            assert d[4] == 2 and d[6] == 1, f"not a sealed version-2 datagram: version {d[4]} mode {d[6]}"
            for a in addrs.values():  # every message carries its sender's address: hidden
                assert a.split(":")[0].encode() not in d, f"address {a} readable in a captured datagram"
        print(f"captured {len(captured)} sealed datagrams to n2, none shows an address")
        time.sleep(0.5)  # n2 has read the originals
        before = json.loads(on("n2", "status").stdout)
        view_before = {k: (v["state"], v["incarnation"]) for k, v in nodes_seen_by("n2").items()}
        osmo("testbed", "exec", "n1", "--", "python3", "-c", REPLAY, host, port, *captured)
        time.sleep(0.5)
        after = json.loads(on("n2", "status").stdout)
        g0, g1 = before["gossip"], after["gossip"]
        print(f"n2 gossip counters after the replay: " +
              ", ".join(f"{k}+{g1[k] - g0[k]}" for k in g1 if k.startswith("dropped")))
        assert g1["dropped_replay"] - g0["dropped_replay"] == len(captured), \
            f"{len(captured)} replayed, dropped_replay rose by {g1['dropped_replay'] - g0['dropped_replay']}"
        for k in ("dropped_bad_mac", "dropped_malformed", "dropped_bad_version"):
            assert g1[k] == g0[k], f"{k} moved: the replay was not recognised as a replay"
        view_after = {k: (v["state"], v["incarnation"]) for k, v in nodes_seen_by("n2").items()}
        assert view_after == view_before, f"view changed: {view_before} -> {view_after}"
        assert tb.all_see(ALIVE), "the cluster is no longer all alive"


if __name__ == "__main__":
    require_root("the cluster testbed")
    run_cases({
        "converge": converge,
        "failure_and_recovery": failure_and_recovery,
        "graceful_leave": graceful_leave,
        "load_rises": load_rises,
        "bad_messages_dropped": bad_messages_dropped,
        "replay_dropped": replay_dropped,
    })
