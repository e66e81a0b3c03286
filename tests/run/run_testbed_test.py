# SPDX-License-Identifier: GPL-2.0-or-later
"""Integration tests of `osmo run`, `osmo ps` and `osmo kill` on a real 3-node testbed (root).

One ctest per case (see CMakeLists.txt); each brings a testbed up and always down again. Real
programs only: cat, sh, python3, sleep. Every wait is bounded.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from testbed import OSMO, Testbed, kill_node_cgroup, on, state_root, osmo, require_root, run_cases, wait_until  # noqa: E402

# Exit statuses of `osmo run` (src/run/exit_status.hpp).
NO_NODE, NODE_DIED = 250, 252


def run_on(node, *cmd, timeout=120, **kw):
    """`osmo run ARGS` started from inside `node`, with stdout/stderr captured."""
    return subprocess.run([OSMO, "testbed", "exec", node, "--", OSMO, "run", *cmd],
                          capture_output=True, timeout=timeout, **kw)


def popen_on(node, *cmd, **kw):
    # `osmo testbed exec` replaces itself with the command, so the Popen pid is `osmo run` itself.
    return subprocess.Popen([OSMO, "testbed", "exec", node, "--", OSMO, "run", *cmd], **kw)


_pending = {}


def read_line(stream, timeout_s=20):
    """One line from a pipe, read unbuffered (select on a buffered reader can miss lines)."""
    import select
    fd = stream.fileno()
    buf = _pending.get(fd, b"")
    deadline = time.monotonic() + timeout_s
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        r, _, _ = select.select([fd], [], [], max(0, left))
        assert r, f"no complete line within {timeout_s}s (got {buf!r})"
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    line, sep, rest = buf.partition(b"\n")
    _pending[fd] = rest
    return (line + sep).decode()


def finish(p, timeout_s=30):
    """communicate(), with whatever read_line() had already read in front of stdout."""
    fd = p.stdout.fileno()
    out, err = p.communicate(timeout=timeout_s)
    return _pending.pop(fd, b"").decode() + out, err


def cluster_jobs(node):
    return json.loads(on(node, "ps", "--json", timeout=30).stdout)


def cat_1gib():
    with Testbed(3), tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        data = os.path.join(d, "in")
        with open(data, "wb") as f:
            for _ in range(1024):
                f.write(os.urandom(1 << 20))
        want = subprocess.run(["sha256sum", data], capture_output=True, text=True, check=True).stdout.split()[0]
        script = f"{OSMO} run --node n2 cat < {data} | sha256sum"
        r = osmo("testbed", "exec", "n1", "--", "bash", "-o", "pipefail", "-c", script, timeout=600)
        got = r.stdout.split()[0]
        assert got == want, f"sha256 through n2: {got}, expected {want}"


def exit_7():
    with Testbed(3):
        r = run_on("n1", "--node", "n2", "sh", "-c", "echo out; echo err >&2; exit 7")
        assert r.returncode == 7, r
        assert r.stdout == b"out\n" and r.stderr == b"err\n", r


def killed_by_signal():
    with Testbed(3):
        r = run_on("n1", "--node", "n3", "sh", "-c", "kill -KILL $$")
        assert r.returncode == 128 + signal.SIGKILL, r
        assert r.stderr == b"", r
        # osmo ps / osmo kill from a third node: the job runs on n3, its home is n1.
        p = popen_on("n1", "--node", "n3", "sleep", "60", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            jobs, _ = wait_until("the job in osmo ps", lambda: [j for j in cluster_jobs("n2") if j["cmd"] == "sleep 60"], 20)
            job = jobs[0]
            assert job["node"] == "n3" and job["home"] == "n1" and job["pid"] > 0, job
            for k in ("id", "state", "cpu_s", "rss_mb", "migrations", "owner"):
                assert k in job, job
            on("n2", "kill", "-USR1", job["id"][:8])
            assert p.wait(timeout=30) == 128 + signal.SIGUSR1
        finally:
            p.kill()
            p.wait()


def ctrl_c():
    with Testbed(3):
        p = popen_on("n1", "--node", "n2", "sh", "-c",
                     "trap 'echo got-int; exit 5' INT; echo ready; while :; do sleep 0.1; done",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = read_line(p.stdout)
            assert line == "ready\n", line
            p.send_signal(signal.SIGINT)
            out, _ = finish(p)
            assert out == "got-int\n", out
            assert p.returncode == 5, p.returncode
        finally:
            p.kill()
            p.wait()


def python_stdin():
    with Testbed(3):
        prog = "import sys\nfor line in sys.stdin:\n    print(line.strip()[::-1], flush=True)\nprint('bye')"
        p = popen_on("n1", "--node", "n3", "python3", "-u", "-c", prog,
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for word in ("hello", "osmo", "cluster"):
                p.stdin.write(word + "\n")
                p.stdin.flush()
                line = read_line(p.stdout)
                assert line == word[::-1] + "\n", line
            p.stdin.close()
            line = read_line(p.stdout)
            assert line == "bye\n", line
            assert p.wait(timeout=30) == 0
        finally:
            p.kill()
            p.wait()


def env_cwd_umask():
    with Testbed(3):
        script = (f"cd /usr/share && umask 027 && ulimit -n 777 && OSMO_T=carried "
                  f"{OSMO} run --node n2 sh -c 'echo $OSMO_T; pwd; umask; ulimit -n; id -u'")
        r = osmo("testbed", "exec", "n1", "--", "sh", "-c", script)
        assert r.stdout == "carried\n/usr/share\n0027\n777\n0\n", r.stdout


def node_killed():
    with Testbed(3) as tb:
        p = popen_on("n1", "-v", "--node", "n2", "sh", "-c", "echo ready; exec sleep 120",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = read_line(p.stdout)
            assert line == "ready\n", line
            # The whole node dies: every process in its cgroup (daemon, shepherd, job) is killed.
            kill_node_cgroup("n2")
            _, err = finish(p)
            assert p.returncode == NODE_DIED, (p.returncode, err)
            assert "osmo run: lost node n2 while job" in err, err
        finally:
            p.kill()
            p.wait()
        del tb


def daemon_restart():
    with Testbed(3):
        p = popen_on("n1", "--node", "n2", "sh", "-c", "echo ready; sleep 6; echo survived",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = read_line(p.stdout)
            assert line == "ready\n", line
            osmo("testbed", "stop", "n2")   # SIGKILL to n2's daemon only
            osmo("testbed", "start", "n2", timeout=60)
            jobs = json.loads(on("n2", "ps", "--json", "--node", "n2").stdout)
            assert [j["cmd"] for j in jobs] == ["sh -c echo ready; sleep 6; echo survived"], jobs
            out, _ = finish(p)
            assert out == "survived\n" and p.returncode == 0, (out, p.returncode)
        finally:
            p.kill()
            p.wait()


def attach_routing():
    """The home daemon's job.attach: a wrong token is rejected, the right one reaches the anchor's
    registration with the stream (tests/run/attach_probe.cpp plays both the anchor and the
    attaching shepherd against n1's real daemon)."""
    with Testbed(3):
        probe = os.environ["OSMO_ATTACH_PROBE"]
        r = osmo("testbed", "exec", "n1", "--", probe, state_root() + "/secret", check=False, timeout=60)
        assert r.returncode == 0 and r.stdout == "ok\n", (r.returncode, r.stdout, r.stderr)


def home_restart_kill():
    """`osmo run` registers again with its restarted home daemon, and `osmo kill` then reaches the
    job through the anchor (jobs.kill asks the anchors first)."""
    with Testbed(3):
        p = popen_on("n1", "--node", "n2", "sh", "-c", "trap 'echo got-usr1; exit 9' USR1; echo ready; "
                     "while :; do sleep 0.1; done", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = read_line(p.stdout)
            assert line == "ready\n", line
            osmo("testbed", "stop", "n1")   # SIGKILL to the home daemon only
            osmo("testbed", "start", "n1", timeout=60)
            jobs, _ = wait_until("the job in osmo ps", lambda: [j for j in cluster_jobs("n1") if j["node"] == "n2"], 20)
            # The anchor re-registers within a second or so of the daemon's return.
            time.sleep(2.5)
            r = on("n3", "kill", "-USR1", jobs[0]["id"])
            assert r.returncode == 0, r
            out, _ = finish(p)
            assert out == "got-usr1\n" and p.returncode == 9, (out, p.returncode)
        finally:
            p.kill()
            p.wait()


def no_node():
    with Testbed(3):
        r = run_on("n1", "--node", "n9", "true")
        assert r.returncode == NO_NODE, r
        assert r.stderr.decode().startswith("osmo run: ") and r.stderr.count(b"\n") == 1, r


def concurrent_100():
    with Testbed(3):
        time.sleep(3)  # let every node hear every other's load
        script = (f"for i in $(seq 100); do {OSMO} run -v sh -c \"sleep 2; echo ok-$i\" "
                  f"> $D/out.$i 2> $D/err.$i & done; wait")
        with tempfile.TemporaryDirectory() as d:
            osmo("testbed", "exec", "n1", "--", "env", f"D={d}", "sh", "-c", script, timeout=300)
            placed = {}
            for i in range(1, 101):
                out = open(os.path.join(d, f"out.{i}")).read()
                err = open(os.path.join(d, f"err.{i}")).read()
                assert out == f"ok-{i}\n", (i, out, err)
                node = err.split(" runs on ")[1].split()[0]
                placed[node] = placed.get(node, 0) + 1
        print("placement of 100 concurrent jobs:", placed)
        assert sum(placed.values()) == 100
        # Spread, not herded: every node gets work and none gets most of it. The home (n1) gets
        # the least, as it also carries the 100 anchors.
        for n in ("n1", "n2", "n3"):
            assert 1 <= placed.get(n, 0) <= 60, f"{n} got {placed.get(n, 0)} of 100 jobs: {placed}"


if __name__ == "__main__":
    require_root("osmo run on the testbed")
    run_cases({f.__name__: f for f in (cat_1gib, exit_7, killed_by_signal, ctrl_c, python_stdin, env_cwd_umask,
                                       node_killed, daemon_restart, no_node, concurrent_100, attach_routing,
                                       home_restart_kill)})
