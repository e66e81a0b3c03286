#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon's Prometheus endpoint: a daemon started with --metrics-listen on loopback serves
GET /metrics; `promtool check metrics` (Debian's prometheus package) accepts the exposition; the
families docs/operations.md lists are there, with this node's own values (its member count, a
placement counted after an `osmo run` when the daemon can host jobs)."""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

OSMO = os.environ["OSMO_BIN"]

EXPECTED = [
    "osmo_node_load", "osmo_node_runnable", "osmo_node_capacity_cpus", "osmo_node_memory_free_bytes",
    "osmo_node_memory_total_bytes", "osmo_node_draining", "osmo_jobs_hosted", "osmo_jobs_guests",
    "osmo_cluster_members", "osmo_cluster_node_load", "osmo_gossip_datagrams_received_total",
    "osmo_gossip_datagrams_sent_total", "osmo_gossip_sent_bytes_total", "osmo_gossip_received_bytes_total",
    "osmo_gossip_dropped_total", "osmo_gossip_suspicions_total", "osmo_gossip_refutations_total",
    "osmo_peer_streams_total", "osmo_control_requests_total", "osmo_placements_total",
    "osmo_placements_failed_total", "osmo_job_start_seconds", "osmo_migrations_total",
    "osmo_migration_freeze_seconds", "osmo_migration_seconds",
]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    promtool = shutil.which("promtool")
    if promtool is None:
        fail("promtool is missing (scripts/lib.sh installs Debian's prometheus package)")
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "cluster.key")
        with open(key, "wb") as f:
            f.write(secrets.token_bytes(32))
        os.chmod(key, 0o600)
        ctl = os.path.join(d, "osmod.sock")
        mport = free_port()
        daemon = subprocess.Popen(
            [OSMO, "--socket", ctl, "daemon", "--name", "metrics-test", "--listen", f"127.0.0.1:{free_port()}",
             "--secret-file", key, "--state-dir", os.path.join(d, "state"), "--metrics-listen", f"127.0.0.1:{mport}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            body = None
            end = time.monotonic() + 20
            while time.monotonic() < end and body is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
                        ctype = r.headers.get("Content-Type", "")
                        body = r.read().decode()
                except OSError:
                    time.sleep(0.1)
            if body is None:
                fail("no answer on /metrics within 20 s")
            if not ctype.startswith("text/plain; version=0.0.4"):
                fail(f"Content-Type {ctype!r}")
            r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                fail(f"promtool check metrics: {r.stdout}{r.stderr}\n{body}")
            families = {l.split()[2] for l in body.splitlines() if l.startswith("# TYPE ")}
            missing = [m for m in EXPECTED if m not in families]
            if missing:
                fail(f"missing families {missing}")
            if 'osmo_cluster_members{state="alive"} 1' not in body:
                fail("this lone node does not count itself alive")
            # A request the daemon answers with no node (an unknown --node) is counted.
            subprocess.run([OSMO, "--socket", ctl, "run", "--node", "nosuchnode", "--", "true"],
                           capture_output=True, timeout=30)
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as resp:
                after = resp.read().decode()
            if 'osmo_placements_failed_total{reason="no_node"} 1' not in after:
                fail("the failed placement was not counted:\n" + after)
            print(f"PASS: {len(families)} metric families, promtool accepts them ({r.stdout.strip() or 'no remarks'})")
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


if __name__ == "__main__":
    main()
