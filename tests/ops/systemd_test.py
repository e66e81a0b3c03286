#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# contrib/systemd/osmod.service and the daemon's side of it.
#   unit:   `systemd-analyze verify` accepts the unit (ExecStart pointed at the built binary).
#   notify: a daemon started with $NOTIFY_SOCKET (as systemd starts a Type=notify service) sends
#           READY=1 once its control socket answers and STOPPING=1 when SIGTERM makes it leave.
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

OSMO = os.environ["OSMO_BIN"]
SOURCE = os.environ["OSMO_SOURCE"]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def case_unit():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        fail("systemd-analyze is missing (scripts/lib.sh installs the systemd package)")
    with tempfile.TemporaryDirectory() as d:
        unit = open(os.path.join(SOURCE, "contrib/systemd/osmod.service")).read()
        if "ExecStart=/usr/bin/osmo daemon" not in unit:
            fail("the unit does not start /usr/bin/osmo daemon")
        path = os.path.join(d, "osmod.service")
        with open(path, "w") as f:
            f.write(unit.replace("/usr/bin/osmo", OSMO))
        r = subprocess.run([analyze, "verify", "--man=no", path], capture_output=True, text=True, timeout=60)
        # verify also prints warnings about other units of this machine; ours must not be named.
        ours = [l for l in (r.stdout + r.stderr).splitlines() if "osmod.service" in l]
        if r.returncode != 0 or ours:
            fail(f"systemd-analyze verify: rc={r.returncode}\n{r.stdout}{r.stderr}")
        for key in ("Type=notify", "KillMode=process", "Restart=on-failure"):
            if key not in unit:
                fail(f"the unit lacks {key}")
    print("PASS: systemd-analyze verify accepts osmod.service")


def recv_state(sock, want, timeout_s):
    end = time.monotonic() + timeout_s
    got = []
    while time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want in msg.split("\n"):
            return got
    fail(f"no {want} from the daemon within {timeout_s}s (got {got!r})")


def case_notify():
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "cluster.key")
        with open(key, "wb") as f:
            f.write(secrets.token_bytes(32))
        os.chmod(key, 0o600)
        notify_path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        ctl = os.path.join(d, "osmod.sock")
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        with socket.socket() as s:  # a free loopback port
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        daemon = subprocess.Popen(
            [OSMO, "--socket", ctl, "daemon", "--name", "notify-test", "--listen", f"127.0.0.1:{port}",
             "--secret-file", key, "--state-dir", os.path.join(d, "state")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            got = recv_state(sock, "READY=1", 20)
            # Ready means serving: the control socket answers at once.
            r = subprocess.run([OSMO, "--socket", ctl, "status"], capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                fail(f"READY=1 came before the control socket answered: {r.stderr}")
            daemon.send_signal(signal.SIGTERM)
            recv_state(sock, "STOPPING=1", 20)
            rc = daemon.wait(timeout=30)
            if rc != 0:
                fail(f"daemon exited {rc} after SIGTERM")
            print(f"PASS: READY=1 then STOPPING=1 ({got!r})")
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            out = daemon.stdout.read()
            if out.strip():
                print(out[-2000:], file=sys.stderr)


if __name__ == "__main__":
    {"unit": case_unit, "notify": case_notify}[sys.argv[1]]()
