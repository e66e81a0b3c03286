#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`osmo mon` on a 3-node testbed, driven in tmux (80x24) as a person would: the frames captured
show all three nodes alive, n3 suspect or dead while it is paused and alive again once resumed (with
those changes in the event log), a job placed by `osmo run` in the job view (`j`), the help (`?`),
and `q` leaving the terminal exactly as it was (stty -g before and after).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from testbed import OSMO, Testbed, osmo, require_root, wait_until  # noqa: E402

SESSION = f"osmo-mon-test-{os.getpid()}"


def tmux(*args, check=True):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=check, timeout=20)


def frame():
    return tmux("capture-pane", "-p", "-t", SESSION).stdout


def wait_frame(what, pred, timeout_s=30):
    frames = []

    def look():
        f = frame()
        frames.append(f)
        return f if pred(f) else None

    try:
        f, _ = wait_until(what, look, timeout_s, interval_s=0.25)
    except AssertionError:
        print(f"last frame while waiting for {what}:\n{frames[-1] if frames else ''}", file=sys.stderr)
        raise
    print(f"--- {what} ---\n{f}")
    return f


def node_line(f, name):
    for line in f.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "*"):
            return line
    return ""


def main():
    require_root("the testbed (network namespaces, cgroups)")
    if shutil.which("tmux") is None:
        print("FAIL: tmux is missing (scripts/lib.sh installs it)", file=sys.stderr)
        sys.exit(1)
    work = tempfile.mkdtemp(prefix="osmo-mon-test.")
    try:
        with Testbed(3):
            script = os.path.join(work, "pane.sh")
            with open(script, "w") as f:
                f.write(f"""#!/bin/sh
stty -g > {work}/before
{OSMO} testbed exec n1 -- {OSMO} mon --interval 0.5
echo "MON-EXIT=$?"
stty -g > {work}/after
sleep 120
""")
            os.chmod(script, 0o755)
            tmux("new-session", "-d", "-s", SESSION, "-x", "80", "-y", "24", script)
            try:
                f = wait_frame("three nodes alive", lambda f: "3 nodes: 3 alive" in f)
                assert node_line(f, "n1").startswith("n1*"), f  # this node is marked
                for line in f.splitlines():
                    assert len(line) <= 80, line

                osmo("testbed", "pause", "n3")
                f = wait_frame("n3 suspect or dead while paused",
                               lambda f: any(s in node_line(f, "n3") for s in ("suspect", "dead")))
                wait_frame("n3's change in the event log", lambda f: "node n3 alive -> suspect" in f
                           or "node n3 alive -> dead" in f)
                osmo("testbed", "resume", "n3")
                f = wait_frame("n3 alive again", lambda f: "3 nodes: 3 alive" in f and "-> alive" in f, 60)

                # A job placed by osmo run appears in the job view and as an event.
                job = subprocess.Popen([OSMO, "testbed", "exec", "n1", "--", OSMO, "run", "--node", "n2", "--",
                                        "sleep", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    tmux("send-keys", "-t", SESSION, "j")
                    f = wait_frame("the job in the job view", lambda f: "ID " in f and " n2 " in f and "sleep 20" in f)
                    wait_frame("the placement in the event log", lambda f: "placed " in f and "(sleep) on n2" in f)
                    tmux("send-keys", "-t", SESSION, "?")
                    wait_frame("the help", lambda f: "Keys" in f and "quit" in f)
                    tmux("send-keys", "-t", SESSION, "n")  # any key leaves the help
                    wait_frame("back from the help", lambda f: "Keys" not in f)
                finally:
                    job.kill()
                    job.wait()
                tmux("send-keys", "-t", SESSION, "q")
                wait_frame("mon exited 0", lambda f: "MON-EXIT=0" in f, 10)
                wait_until("stty after", lambda: os.path.exists(f"{work}/after") and open(f"{work}/after").read(), 10)
                before, after = open(f"{work}/before").read(), open(f"{work}/after").read()
                assert before == after, f"terminal settings changed: {before!r} -> {after!r}"
            finally:
                tmux("kill-session", "-t", SESSION, check=False)
        print("PASS: osmo mon showed the pause and the resume, the job and the help, and quit cleanly")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
