# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 11 on a real 4-node testbed (root): the programs a job starts are placed at exec.

One ctest per case (see CMakeLists.txt); each brings a testbed up (4 nodes, 0.5 CPU each) and
always down again. Real programs only (sh, bc, python3, sha256sum, make, cc). Every wait is
bounded. The job runs at n1 (--node n1) with a shared working directory under /dev/shm.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from testbed import OSMO, Testbed, kill_node_cgroup, on, osmo, require_root, run_cases, state_root, wait_until  # noqa: E402

NODES = ["n1", "n2", "n3", "n4"]


def debug_daemons():
    """The daemons log at debug level (the supervisor's reasons to stay are debug lines): the
    testbed starts them through a wrapper (OSMO_TESTBED_DAEMON, docs/testbed.md)."""
    d = tempfile.mkdtemp(prefix="osmo-spread-test-", dir="/dev/shm")
    wrapper = os.path.join(d, "osmod-debug")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nexec {OSMO} --log-level debug "$@"\n')
    os.chmod(wrapper, 0o755)
    os.chmod(d, 0o755)
    os.environ["OSMO_TESTBED_DAEMON"] = wrapper
# ~1-2 s of CPU for bc at 0.5 CPU: long enough that placement sends most of a burst away.
BC_JOB = "scale=1100; 4*a(1)\n"


def run_job(cwd, script, *opts, timeout=300):
    """`osmo run --node n1 OPTS -- sh -c SCRIPT` from inside n1, in `cwd`."""
    return subprocess.run([OSMO, "testbed", "exec", "n1", "--", "sh", "-c",
                           f"cd {cwd} && exec {OSMO} run --node n1 -T {' '.join(opts)} -- sh -c '{script}'"],
                          capture_output=True, text=True, timeout=timeout)


def popen_job(cwd, script, *opts):
    return subprocess.Popen([OSMO, "testbed", "exec", "n1", "--", "sh", "-c",
                             f"cd {cwd} && exec {OSMO} run --node n1 -T {' '.join(opts)} -- sh -c '{script}'"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_view():
    """n1 knows every node's load (placement ignores nodes without a fresh figure)."""
    def ready():
        r = on("n1", "nodes", "--json", check=False, timeout=10)
        if r.returncode != 0:
            return False
        ns = json.loads(r.stdout)
        return len(ns) == 4 and all(n["state"] == "alive" and n.get("load") is not None and n["age_ms"] < 2000 for n in ns)
    wait_until("n1 sees the loads of all 4 nodes", ready, 30, 0.2)


def log_lines(node, needle):
    with open(os.path.join(state_root(), node, "osmod.log")) as f:
        return [line for line in f if needle in line]


def jobs():
    return json.loads(on("n1", "ps", "--json", timeout=30).stdout)


def processes_of_node(node):
    """Pids in the node's cgroup (daemon, shepherds, jobs)."""
    state = json.load(open(state_root() + "/testbed.json"))
    cg = next(n["cgroup"]["cpu"] for n in state["nodes"] if n["name"] == node)
    return [int(p) for p in open(os.path.join(cg, "cgroup.procs")).read().split()]


def comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return None


def job_processes_everywhere():
    """Every process on any node that is not a daemon or its launcher/warm shepherd: the
    leftovers of jobs (shepherds running a job, inits, programs, deputies)."""
    left = []
    for node in NODES:
        for pid in processes_of_node(node):
            c = comm(pid)
            if c is None:
                continue
            try:
                cmd = open(f"/proc/{pid}/cmdline").read().split("\0")
            except OSError:
                continue
            if c in ("bc", "python3", "sleep") or "__spread-deputy" in cmd:
                left.append((node, pid, c))
    return left


def bc_burst():
    """4 then 8 background bc jobs: outputs identical to a local run, spread over nodes, each exit
    status kept, and a pipe from a remote program into a local one intact."""
    with Testbed(4, cpus=0.5), tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        os.chmod(d, 0o755)
        wait_for_view()
        for i in range(1, 9):
            with open(os.path.join(d, f"job{i}"), "w") as f:
                f.write(f"scale={1000 + 10 * i}; 4*a(1)\n")
        want = {i: subprocess.run(["bc", "-l"], stdin=open(os.path.join(d, f"job{i}")), capture_output=True,
                                  text=True, check=True).stdout for i in range(1, 9)}
        # Each background bc's status is kept: job i ends with `quit` after an error for odd i?
        # bc exits 0 on success; `(bc; exit $i)` would be a subshell. Instead each status is read
        # with `wait $pid`, and one program per burst fails on purpose (a missing input file makes
        # the shell, not bc, fail: so the failure comes from python3 exiting 7 remotely).
        script = ("for i in 1 2 3 4 5 6 7 8; do bc -l <job$i >out$i & eval p$i=$!; done; "
                  "python3 -c \"import sys; sum(range(3*10**6)); sys.exit(7)\" & p9=$!; "
                  "for i in 1 2 3 4 5 6 7 8 9; do eval wait \\$p$i; echo st$i=$?; done")
        r = run_job(d, script)
        assert r.returncode == 0, f"job exited {r.returncode}: {r.stderr}"
        for i in range(1, 9):
            got = open(os.path.join(d, f"out{i}")).read()
            assert got == want[i], f"out{i} differs from a local run ({len(got)} vs {len(want[i])} bytes)"
            assert f"st{i}=0" in r.stdout, r.stdout
        assert "st9=7" in r.stdout, f"python3's exit 7 was not kept: {r.stdout}"
        gone = log_lines("n1", "(deputy here)")
        targets = {line.split(" goes to ")[1].split()[0] for line in gone if " goes to " in line}
        assert len(targets) >= 2, f"programs went to {targets} only: {gone}"
        # A pipe from a remote program into a local one: python3 generates 20 MB, sha256sum stays.
        gen = "import sys; [sys.stdout.write(str(i) * 50 + chr(10)) for i in range(200000)]"
        local = subprocess.run(f"python3 -c '{gen}' | sha256sum", shell=True, capture_output=True, text=True)
        burn = "python3 -c \"sum(range(10**7))\""
        r = run_job(d, f"{burn} & {burn} & python3 -c \"{gen}\" | sha256sum; wait")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[0] == local.stdout.split()[0], f"pipe digest {r.stdout} vs {local.stdout}"
        print(f"bc_burst: programs went to {sorted(targets)}; log: {len(gone)} redirects", file=sys.stderr)


def killed_by_signal():
    """A remote program killed with kill -9 shows up in its parent as killed by SIGKILL (137); a
    SIGTERM sent to a deputy reaches its remote program, which dies of it (143); nothing is left
    on any node afterwards."""
    with Testbed(4, cpus=0.5), tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        os.chmod(d, 0o755)
        wait_for_view()
        sleeper = "python3 -c \"import time; time.sleep(90)\""
        script = (f"{sleeper} A & pA=$!; {sleeper} B & pB=$!; {sleeper} C & pC=$!; "
                  "wait $pC; echo stC=$?; kill $pB; wait $pB; echo stB=$?; kill $pA; wait $pA; echo stA=$?")
        p = popen_job(d, script)

        def remote_c():
            js = [j for j in jobs() if j.get("parent") and j["cmd"].endswith(" C")]
            return js[0] if js else None
        c, _ = wait_until("program C as a sub-job", remote_c, 30, 0.3)
        assert c["node"] != "n1", c
        os.kill(c["pid"], signal.SIGKILL)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert "stC=137" in out, f"kill -9 of the remote program: {out!r} {err!r}"
        assert "stB=143" in out, f"SIGTERM to the deputy: {out!r} {err!r}"
        assert "stA=143" in out, out
        wait_until("no job process on any node", lambda: not job_processes_everywhere(), 20, 0.3)
        print(f"killed_by_signal: {out.strip()!r} (C ran on {c['node']})", file=sys.stderr)


def tree_kill_node_death():
    """`osmo ps --tree` shows sub-jobs under their job (JSON `parent`); the node of a sub-job
    killed makes its deputy exit as killed by SIGKILL (137), never a hang; `osmo kill` on the
    job reaches its other sub-job (143); no process of the job is left on any node."""
    with Testbed(4, cpus=0.5), tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        os.chmod(d, 0o755)
        wait_for_view()
        sleeper = "python3 -c \"import time; time.sleep(90)\""
        # A occupies n1 (the first program stays: home margin) and ends by itself; B and C go.
        # The shell ignores SIGTERM only after starting them, so `osmo kill` reaches B alone.
        script = ("python3 -c \"import time; time.sleep(4)\" A & pA=$!; "
                  f"{sleeper} B & pB=$!; {sleeper} C & pC=$!; trap \"\" TERM; "
                  "wait $pA; echo stA=$?; wait $pB; echo stB=$?; wait $pC; echo stC=$?")
        p = popen_job(d, script)

        def subs():
            js = jobs()
            root = [j for j in js if not j.get("parent") and j["cmd"].startswith("sh -c")]
            kids = [j for j in js if root and j.get("parent") == root[0]["id"]]
            return (root[0], kids) if len(kids) >= 2 else None
        try:
            (root, kids), _ = wait_until("two sub-jobs under the job", subs, 30, 0.3)
        except AssertionError:
            print(json.dumps(jobs(), indent=1), "".join(log_lines("n1", "spread")), file=sys.stderr)
            raise
        tree = on("n1", "ps", "--tree", timeout=30).stdout.splitlines()
        at = next(i for i, line in enumerate(tree) if line.startswith(root["id"]))
        assert all("\\_ python3" in line for line in tree[at + 1:at + 3]), "\n".join(tree)
        b = next(k for k in kids if k["cmd"].endswith(" B"))
        c = next(k for k in kids if k["cmd"].endswith(" C"))
        assert b["node"] != "n1" and c["node"] != "n1" and b["node"] != c["node"], kids
        kill_node_cgroup(c["node"])
        time.sleep(1)
        on("n1", "kill", root["id"], timeout=30)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, f"job exited {p.returncode}: {err}"
        assert "stA=0" in out and "stB=143" in out and "stC=137" in out, f"{out!r} {err!r}"
        alive = [n for n in NODES if n != c["node"]]
        wait_until("no job process on any node",
                   lambda: not [x for x in job_processes_everywhere() if x[0] in alive], 20, 0.3)
        print(f"tree_kill_node_death: {out.strip()!r}; B on {b['node']}, C on {c['node']} (killed)", file=sys.stderr)


def stay_rules():
    """What stays on the job's node although placement chose another, with the reason in the
    daemon's debug log: a setuid program, a program that would inherit an fd other than 0-2, a
    program with file capabilities, a program on the node's stay-local list. Each still runs, with its output."""
    with Testbed(4, cpus=0.5), tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        os.chmod(d, 0o755)
        wait_for_view()
        with open(os.path.join(d, "job"), "w") as f:
            f.write("scale=300; 4*a(1)\n")
        want = subprocess.run(["bc", "-l"], stdin=open(os.path.join(d, "job")), capture_output=True, text=True).stdout
        subprocess.run(["cp", "/usr/bin/bc", os.path.join(d, "bcsuid")], check=True)
        os.chmod(os.path.join(d, "bcsuid"), 0o4755)
        subprocess.run(["cp", "/usr/bin/bc", os.path.join(d, "bccap")], check=True)
        subprocess.run(["setcap", "cap_net_raw+ep", os.path.join(d, "bccap")], check=True)
        # The burner stays (home margin) and makes n1 look busy to placement for what follows.
        script = ("python3 -c \"import time; time.sleep(3)\" & "
                  "./bcsuid -l <job >o1; ./bccap -l <job >o4; bc -l <job >o2 3</dev/null; sleep 0.1; bc -l <job >o3; wait")
        r = run_job(d, script)
        assert r.returncode == 0, r.stderr
        for o in ("o1", "o2", "o3", "o4"):
            assert open(os.path.join(d, o)).read() == want, o
        stays = "".join(log_lines("n1", " stays: "))
        assert "bcsuid is setuid" in stays, stays
        assert "bccap has file capabilities" in stays, stays
        assert "fd 3 (/dev/null) would be inherited and cannot be relayed" in stays, stays
        assert "/bin/sleep stays: on the node's stay-local list" in stays or \
               "/usr/bin/sleep stays: on the node's stay-local list" in stays, stays
        goes = log_lines("n1", " goes to ")
        assert len(goes) == 1 and "/usr/bin/bc goes to" in goes[0], goes  # o3 only


def make_j8():
    """`osmo run --node n1 -- make -j8` of a generated 64-file C project builds the same binary as
    a local build, with compilers seen in `osmo ps --tree` on at least three nodes."""
    gen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "spread", "gen_project.sh")
    with Testbed(4, cpus=0.5), tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        os.chmod(d, 0o755)
        subprocess.run([gen, os.path.join(d, "local"), "64"], check=True)
        subprocess.run([gen, os.path.join(d, "osmo"), "64"], check=True)
        subprocess.run(["make", "-s", "-j2", "-C", os.path.join(d, "local")], check=True, timeout=900)
        want = open(os.path.join(d, "local", "prog"), "rb").read()
        wait_for_view()
        p = popen_job(os.path.join(d, "osmo"), "make -s -j8")
        seen = set()
        deadline = time.monotonic() + 900
        while p.poll() is None and time.monotonic() < deadline:
            r = on("n1", "ps", "--tree", check=False, timeout=30)
            for line in r.stdout.splitlines()[1:]:
                cols = line.split()
                if len(cols) > 11 and "\\_" in line and any(c in line for c in (" cc ", "/cc1 ", " as ")):
                    seen.add(cols[3])  # NODE
            time.sleep(0.5)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, f"make exited {p.returncode}: {err[-2000:]}"
        got = open(os.path.join(d, "osmo", "prog"), "rb").read()
        assert got == want, "the binary built through osmo differs from the local build"
        assert len(seen) >= 3, f"compilers seen on {sorted(seen)} only"
        print(f"make_j8: compilers seen on {sorted(seen)}", file=sys.stderr)


def daemon_restart():
    """The job's daemon killed and restarted: the job's execs never hang (its shepherd answers
    them while there is no supervisor) and the restarted daemon supervises the job again."""
    with Testbed(4, cpus=0.5), tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        os.chmod(d, 0o755)
        wait_for_view()
        script = ("for i in 1 2 3 4 5 6 7 8; do python3 -c \"sum(range(10**5))\" || exit 9; sleep 0.5; done; "
                  "echo done")
        p = popen_job(d, script)
        wait_until("the job supervised", lambda: log_lines("n1", "supervised"), 20, 0.2)
        osmo("testbed", "stop", "n1")  # SIGKILL to n1's daemon only
        time.sleep(1.5)                # execs meanwhile: the shepherd answers them
        osmo("testbed", "start", "n1", timeout=60)
        wait_until("the job supervised again", lambda: len(log_lines("n1", "supervised")) >= 2, 20, 0.2)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out == "done\n", (p.returncode, out, err)


def no_spread():
    """--no-spread: every program stays at n1, and the supervisor is not even asked."""
    with Testbed(4, cpus=0.5), tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        os.chmod(d, 0o755)
        wait_for_view()
        before = len(log_lines("n1", "supervised"))
        r = run_job(d, "for i in 1 2 3 4; do python3 -c \"sum(range(10**6))\" & done; wait", "--no-spread")
        assert r.returncode == 0, r.stderr
        assert len(log_lines("n1", "supervised")) == before, "a --no-spread job was supervised"
        assert not log_lines("n1", "goes to"), "a --no-spread job's program left n1"


if __name__ == "__main__":
    require_root("the spread testbed cases")
    debug_daemons()
    run_cases({"bc_burst": bc_burst, "killed_by_signal": killed_by_signal, "no_spread": no_spread, "stay_rules": stay_rules, "make_j8": make_j8, "daemon_restart": daemon_restart,
               "tree_kill_node_death": tree_kill_node_death})
