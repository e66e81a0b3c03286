# SPDX-License-Identifier: GPL-2.0-or-later
"""Live migration of real programs on a 3-node testbed (root): `osmo run` at home n1, the job on
n2, moved with `osmo migrate` to the other nodes and back while it runs. Output must be
byte-identical to an undisturbed run, the exit status kept, and every failure must leave exactly
one copy of the job running where it was.

One ctest per case (CMakeLists.txt); each brings a testbed up and always down again. Every wait
and every program is bounded; processes are only ever killed by the pids we started.
"""
import hashlib
import json
import os
import pty
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from testbed import OSMO, Testbed, bridge_netns, state_root, on, osmo, require_root, run_cases, wait_until  # noqa: E402

CPUS = 0.5  # per node: programs run long enough to be moved several times


def popen_run(home, *cmd, **kw):
    """`osmo run CMD` started from inside `home`; the Popen pid is `osmo run` itself."""
    return subprocess.Popen([OSMO, "testbed", "exec", home, "--", OSMO, "run", *cmd], **kw)


def jobs(node):
    return json.loads(on(node, "ps", "--json", timeout=30).stdout)


def job_where(observer, match):
    """The job whose command line contains `match`, as `observer` lists it (None if absent)."""
    found = [j for j in jobs(observer) if match in j["cmd"]]
    assert len(found) <= 1, f"{len(found)} jobs match {match!r}: {found}"
    return found[0] if found else None


def wait_job(observer, match, timeout_s=30):
    j, _ = wait_until(f"job '{match}' listed", lambda: job_where(observer, match), timeout_s)
    return j


def migrate(from_node, job_id, to, check=True, timeout=180, method=None):
    """`osmo migrate -v ID TO [--method M]` run on `from_node`; returns the CompletedProcess."""
    extra = ["--method", method] if method else []
    r = on(from_node, "migrate", "-v", job_id, to, *extra, check=False, timeout=timeout)
    if check:
        assert r.returncode == 0, f"osmo migrate {job_id} {to} (from {from_node}) exited {r.returncode}: {r.stderr.strip()}"
        print(f"  {from_node}: {r.stdout.strip()}")
    return r


def moved_to(observer, match, node, count):
    """Waits until `osmo ps` shows the job on `node` with `count` migrations, listed once."""
    def seen():
        j = job_where(observer, match)
        return j if j and j["node"] == node and j["migrations"] == count else None
    j, _ = wait_until(f"job on {node} after {count} moves", seen, 20)
    return j


def one_line_error(r):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0, f"expected a failure, got {r.returncode}: {r.stdout}"
    assert len(lines) == 1 and lines[0].startswith("osmo migrate: "), f"not one line: {r.stderr!r}"
    return lines[0]


def finish(p, timeout_s=300):
    out, err = p.communicate(timeout=timeout_s)
    return p.returncode, out, err


def kill_started(p):
    if p.poll() is None:
        p.kill()
        p.wait()


# ---- real programs, moved while they run ----

BC_PROG = "scale=4000; 4*a(1)\nquit\n"


def bc_pi_three_hops():
    """bc computing 4000 digits of pi: n2 -> n3 -> home (n1) -> n2, each move asked from another node."""
    with Testbed(3, cpus=CPUS), tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "pi.bc")
        with open(prog, "w") as f:
            f.write(BC_PROG)
        want = subprocess.run(["bc", "-l", prog], capture_output=True, check=True, timeout=300).stdout
        p = popen_run("n1", "--node", "n2", "bc", "-l", prog, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "bc -l")
            time.sleep(1)
            for k, (asker, to, where) in enumerate([("n1", "n3", "n3"), ("n3", "home", "n1"), ("n2", "n2", "n2")], 1):
                migrate(asker, job["id"], to)
                moved_to("n3", "bc -l", where, k)
                time.sleep(0.5)
            rc, out, err = finish(p)
            assert rc == 0, (rc, err)
            assert out == want, f"output differs after 3 moves ({len(out)} vs {len(want)} bytes)"
            assert err == b"", err
        finally:
            kill_started(p)


def postcopy_bc_there_and_back():
    """bc computing pi moved with --method postcopy n2 -> n3 -> home (n1) -> n2: the job runs at the
    target at once and its memory follows; output byte-identical, exit status kept."""
    with Testbed(3, cpus=CPUS), tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "pi.bc")
        with open(prog, "w") as f:
            f.write(BC_PROG)
        want = subprocess.run(["bc", "-l", prog], capture_output=True, check=True, timeout=300).stdout
        p = popen_run("n1", "--node", "n2", "bc", "-l", prog, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "bc -l")
            time.sleep(1)
            for k, (asker, to, where) in enumerate([("n1", "n3", "n3"), ("n3", "home", "n1"), ("n2", "n2", "n2")], 1):
                r = migrate(asker, job["id"], to, method="postcopy")
                assert "by postcopy" in r.stdout and "post-copy:" in r.stdout, r.stdout
                moved_to("n3", "bc -l", where, k)
                time.sleep(0.5)
            rc, out, err = finish(p)
            assert rc == 0, (rc, err)
            assert out == want, f"output differs after 3 post-copy moves ({len(out)} vs {len(want)} bytes)"
            assert err == b"", err
        finally:
            kill_started(p)


def xz_to_file():
    """xz -T1 compressing 300 MB of generated text to a file, moved twice; the .xz is byte-identical."""
    with Testbed(3, cpus=CPUS), tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        src = os.path.join(d, "text")
        subprocess.run(f"seq 1 60000000 | head -c 300000000 > {src}", shell=True, check=True)
        want = subprocess.run(f"xz -T1 -0 -c {src} | sha256sum", shell=True, capture_output=True, text=True,
                              check=True, timeout=600).stdout.split()[0]
        p = popen_run("n1", "--node", "n2", "xz", "-T1", "-0", "-k", src, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "xz -T1")
            time.sleep(2)
            migrate("n1", job["id"], "n3")
            moved_to("n1", "xz -T1", "n3", 1)
            time.sleep(2)
            migrate("n2", job["id"], "home")
            moved_to("n1", "xz -T1", "n1", 2)
            rc, _, err = finish(p, timeout_s=600)
            assert rc == 0, (rc, err)
            got = hashlib.sha256(open(src + ".xz", "rb").read()).hexdigest()
            assert got == want, "the .xz written across two moves differs from an undisturbed run"
        finally:
            kill_started(p)


PY_TICKER = r"""
import os, select, sys
n, buf = 0, b""
while True:
    r, _, _ = select.select([0], [], [], 0.02)
    if r:
        chunk = os.read(0, 4096)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            print("echo", line.decode(), flush=True)
    else:
        n += 1
        print("tick", n, flush=True)
print("bye", flush=True)
"""


def python_stdin():
    """python3 printing a counter while echoing stdin lines, moved twice while lines keep coming."""
    with Testbed(3, cpus=CPUS):
        p = popen_run("n1", "--node", "n2", "python3", "-u", "-c", PY_TICKER,
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "python3 -u")
            sent = []

            def feed(k):
                for i in range(k):
                    line = f"line-{len(sent)}"
                    sent.append(line)
                    p.stdin.write((line + "\n").encode())
                    p.stdin.flush()
                    time.sleep(0.01)
            feed(20)
            migrate("n1", job["id"], "n3")
            feed(20)
            migrate("n3", job["id"], "home")
            feed(20)
            rc, out, err = finish(p)  # communicate() closes stdin: the job sees EOF and says bye
            assert rc == 0, (rc, err)
            lines = out.decode().splitlines()
            assert lines[-1] == "bye", lines[-3:]
            echoed = [l[5:] for l in lines if l.startswith("echo ")]
            assert echoed == sent, f"stdin lines lost, duplicated or reordered: {len(echoed)} of {len(sent)}"
            ticks = [int(l[5:]) for l in lines if l.startswith("tick ")]
            assert ticks == list(range(1, len(ticks) + 1)), "the counter skipped or repeated across the moves"
        finally:
            kill_started(p)


SLEEPER = "import time\nfor i in range(1200):\n    time.sleep(0.05)\n"


def kill_after_each_move():
    """`osmo kill -TERM` right after a move reaches the job wherever it is: 143 at home."""
    with Testbed(3, cpus=CPUS):
        for hops in (["n3"], ["n3", "home"]):
            p = popen_run("n1", "--node", "n2", "python3", "-c", SLEEPER, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                job = wait_job("n1", "python3 -c")
                for k, to in enumerate(hops, 1):
                    migrate("n2", job["id"], to)
                    moved_to("n1", "python3 -c", "n1" if to == "home" else to, k)
                on("n2", "kill", "-TERM", job["id"])
                rc, _, err = finish(p, 60)
                assert rc == 128 + signal.SIGTERM, (rc, err)
            finally:
                kill_started(p)
            wait_until("the job gone", lambda: job_where("n1", "python3 -c") is None, 20)


def ctrl_c_at_home(pty_flag="-T"):
    """A Ctrl-C typed at the home terminal after two moves reaches the job: 130. With -T the job has
    no pty (its stdio are pipes): Ctrl-C at the caller's terminal is a signal to `osmo run`,
    forwarded to the moved job as SIGINT."""
    with Testbed(3, cpus=CPUS):
        master, slave = pty.openpty()
        p = subprocess.Popen([OSMO, "testbed", "exec", "n1", "--", OSMO, "run", pty_flag, "--node", "n2", "python3", "-c",
                              SLEEPER],
                             stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                             preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0))
        os.close(slave)
        try:
            job = wait_job("n1", "python3 -c")
            migrate("n1", job["id"], "n3")
            migrate("n1", job["id"], "home")
            moved_to("n1", "python3 -c", "n1", 2)
            os.write(master, b"\x03")
            rc = p.wait(timeout=60)
            assert rc == 128 + signal.SIGINT, rc
        finally:
            kill_started(p)
            os.close(master)


def ctrl_c_at_home_pty():
    """The same with -t: the job has a pty, which moves with it (a new pty on each node, its settings
    and foreground group carried); the home terminal is raw, so the Ctrl-C is a byte typed into the
    job's new pty, whose line discipline sends SIGINT to its foreground group: 130."""
    ctrl_c_at_home("-t")


PIPELINE = "seq 1 50000000 | sha256sum"


def pipeline_three_hops():
    """`sh -c 'seq 1 50000000 | sha256sum'` (a tree of three processes and a pipe): n2 -> n3 -> home
    -> n2 while it runs; the digest is the undisturbed run's."""
    with Testbed(3, cpus=0.25):
        want = subprocess.run(PIPELINE, shell=True, capture_output=True, check=True, timeout=300).stdout
        p = popen_run("n1", "--node", "n2", "sh", "-c", PIPELINE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "sh -c")
            time.sleep(1)
            for k, (asker, to, where) in enumerate([("n1", "n3", "n3"), ("n3", "home", "n1"), ("n2", "n2", "n2")], 1):
                migrate(asker, job["id"], to)
                moved_to("n3", "sh -c", where, k)
                time.sleep(0.5)
            rc, out, err = finish(p)
            assert rc == 0, (rc, err)
            assert out == want, f"output differs after 3 moves: {out!r} vs {want!r}"
            assert err == b"", err
        finally:
            kill_started(p)


# Two children still running (each a subshell forking `sleep` over and over) while the job moves;
# the shell collects their exit statuses afterwards, and its own (9) is the job's at home. And an
# orphan: a subshell whose parent exited at once, adopted by the job's init (after a move: by the
# restorer's init), prints a line of its own after 2 s.
CHILDREN = ('sh -c "(sleep 2; echo orphan) &"; '
            'w() { i=0; while [ $i -lt 60 ]; do i=$((i+1)); sleep 0.1; done; exit $1; }; '
            'w 3 & a=$!; w 4 & b=$!; wait $a; echo "a=$?"; wait $b; echo "b=$?"; exit 9')


def children_running():
    """A job whose children are still running (and an orphan) moves twice (n3, home); its shell
    collects its children, the orphan finishes, the job's exit status reaches home."""
    with Testbed(3, cpus=CPUS):
        p = popen_run("n1", "--node", "n2", "sh", "-c", CHILDREN, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "sh -c")
            time.sleep(1)
            for k, to in enumerate(["n3", "home"], 1):
                migrate("n1", job["id"], to)
                moved_to("n1", "sh -c", "n1" if to == "home" else to, k)
            rc, out, err = finish(p, 120)
            assert rc == 9, (rc, err)
            assert out == b"orphan\na=3\nb=4\n", out
        finally:
            kill_started(p)


ZOMBIE = r"""
import os, time
pid = os.fork()
if pid == 0:
    os._exit(7)
def state():
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]
while state() != "Z":
    time.sleep(0.01)
for i in range(40):
    print("tick", i, flush=True)
    time.sleep(0.1)
before = state()
_, status = os.waitpid(pid, 0)
print("zombie", before, os.waitstatus_to_exitcode(status), flush=True)
"""


def zombie_kept():
    """A job holding a zombie child moves twice; the zombie is still its zombie and waitpid() gets 7."""
    with Testbed(3, cpus=CPUS):
        p = popen_run("n1", "--node", "n2", "python3", "-c", ZOMBIE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "python3 -c")
            time.sleep(0.5)
            for k, to in enumerate(["n3", "home"], 1):
                migrate("n1", job["id"], to)
                moved_to("n1", "python3 -c", "n1" if to == "home" else to, k)
            rc, out, err = finish(p, 120)
            assert rc == 0, (rc, err)
            lines = out.decode().splitlines()
            assert lines[:-1] == [f"tick {i}" for i in range(40)], lines
            assert lines[-1] == "zombie Z 7", lines[-1]
        finally:
            kill_started(p)


THREADED = r"""
import threading, time
t = threading.Thread(target=time.sleep, args=(4,))
t.start()
t.join()
print("joined", flush=True)
"""


def threads_refused():
    """A job with a threaded process is refused before it is touched, with the reason (migrate,
    --check, ps --json); it finishes intact where it was."""
    with Testbed(3, cpus=CPUS):
        p = popen_run("n1", "--node", "n2", "python3", "-c", THREADED, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      text=True)
        try:
            job = wait_job("n1", "python3 -c")
            time.sleep(0.5)
            r = on("n3", "migrate", "--check", job["id"], "n3", check=False)
            assert r.returncode != 0 and "2 threads" in r.stderr and "python3" in r.stderr, (r.returncode, r.stderr)
            j = job_where("n1", "python3 -c")
            assert j["movable"] is False and "2 threads" in j["why_not"], j
            line = one_line_error(migrate("n1", job["id"], "n3", check=False))
            assert "2 threads" in line and "n2" in line, line
            rc, out, _ = finish(p)
            assert rc == 0 and out == "joined\n", (rc, out)
        finally:
            kill_started(p)


def check_and_ps():
    """--check answers without touching the job; ps shows node and migration count."""
    with Testbed(3, cpus=CPUS):
        p = popen_run("n1", "--node", "n2", "python3", "-c", SLEEPER, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "python3 -c")
            assert job["migrations"] == 0, job
            r = on("n3", "migrate", "--check", job["id"], "n3")
            assert "can move" in r.stdout, r.stdout
            assert job_where("n1", "python3 -c")["node"] == "n2"
            r = on("n1", "migrate", job["id"], "nosuchnode", check=False)
            assert "nosuchnode" in one_line_error(r)
            r = on("n1", "migrate", job["id"], "n2", check=False)
            assert "already runs on n2" in one_line_error(r)
            r = on("n1", "migrate", "ffffffffffff", "n3", check=False)
            assert "no job" in one_line_error(r)
            p.send_signal(signal.SIGTERM)
            finish(p, 60)
        finally:
            kill_started(p)


# ---- faults: each leaves the job running at the source, output intact, no second copy ----

BIG_TICKER = r"""
import sys, time
block = bytearray(range(256)) * (4 << 20)   # 1 GiB of pages that must all travel
for i in range(400):
    print("tick", i, flush=True)
    time.sleep(0.05)
print("sum", sum(block[::4099]), flush=True)
"""


def expect_intact_at_source(p, job_id, source="n2", ticks_want=400):
    """The job still runs at the source, listed once, and finishes with every line in order."""
    j = job_where("n1", "python3 -c")
    assert j is not None and j["node"] == source and j["migrations"] == 0, j
    rc, out, err = finish(p)
    assert rc == 0, (rc, err)
    lines = out.decode().splitlines()
    ticks = [int(l.split()[1]) for l in lines if l.startswith("tick ")]
    assert ticks == list(range(ticks_want)), "output lost or repeated after the failed migration"
    # The 1 GiB that travelled (or not) is still the job's: every 4099th byte, summed.
    assert lines[-1] == f"sum {sum(j % 256 for j in range(0, 1 << 30, 4099))}", lines[-1]


def fault_case(during, expect, setup=None, method=None, ticks=400):
    """Starts the big ticker on n2, starts a migration to n3 in the background, calls during(),
    and checks the migration failed in one line naming `expect` and the job is intact at n2.
    Pre-copy's faults hit a job that keeps running (while a send to a cut link stalls for 10 s):
    those cases run a longer ticker, so that it is still there when the migration gives up."""
    extra = ["--method", method] if method else []
    prog = BIG_TICKER.replace("range(400)", f"range({ticks})")
    with Testbed(3, cpus=CPUS):
        p = popen_run("n1", "--node", "n2", "python3", "-c", prog, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "python3 -c")
            time.sleep(2)
            if setup:
                setup()
            m = subprocess.Popen([OSMO, "testbed", "exec", "n1", "--", OSMO, "migrate", job["id"], "n3", *extra],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                during(job["id"])
                m.wait(timeout=240)
                r = subprocess.CompletedProcess(m.args, m.returncode, m.stdout.read(), m.stderr.read())
                line = one_line_error(r)
                print("  " + line)
                # `expect`: a text, or several, any of which the line may name.
                wanted = (expect,) if isinstance(expect, str) else tuple(expect)
                assert any(w in line for w in wanted) and "runs on n2 again" in line, f"expected {wanted}: {line}"
            finally:
                kill_started(m)
            expect_intact_at_source(p, job["id"], ticks_want=ticks)
        finally:
            kill_started(p)


def image_flowing(job_id, node="n3"):
    """Returns once `node`'s daemon has started the incoming shepherd of `job_id` (its log says so):
    the image is then on its way (1 GiB at half a CPU takes seconds), and a fault hits it mid-stream."""
    log = "%s/%s/osmod.log" % (state_root(), node)
    wait_until(f"job {job_id} arriving at {node}",
               lambda: f"job={job_id} arriving" in open(log, errors="replace").read(), 30, interval_s=0.02)
    time.sleep(0.2)


# The image-phase faults name stop-and-copy: auto would pick pre-copy for the 1 GiB ticker (its
# faults during the rounds are the *_precopy cases).
def target_daemon_killed():
    fault_case(lambda job_id: (image_flowing(job_id), osmo("testbed", "stop", "n3")), "n3", method="stop")


def link_cut():
    # n3's cable, unplugged mid-stream (the bridge end of its veth pair), and plugged back after.
    def cut(job_id):
        image_flowing(job_id)
        subprocess.run(["ip", "-n", bridge_netns(), "link", "set", "v3", "down"], check=True)
        time.sleep(15)
        subprocess.run(["ip", "-n", bridge_netns(), "link", "set", "v3", "up"], check=True)
    fault_case(cut, "n3", method="stop")


def flipped_chunk():
    """OSMO_FAULT=migrate.flip_chunk makes every source flip one byte of a sealed page chunk."""
    os.environ["OSMO_FAULT"] = "migrate.flip_chunk"
    try:
        fault_case(lambda job_id: None, "failed authentication", method="stop")
    finally:
        del os.environ["OSMO_FAULT"]


def target_out_of_memory(expect="n3", method=None):
    """n3's daemon (and what it starts) in a memory cgroup of 256 MiB: the 1 GiB job cannot land.
    With auto (pre-copy or post-copy for this job) the target refuses it at once for its memory
    limit; stop-and-copy's restore is OOM-killed (target_out_of_memory_stop)."""
    base = "/sys/fs/cgroup/memory"
    if not os.path.isdir(base):
        base = "/sys/fs/cgroup"
    cg = os.path.join(base, f"osmo-test-oom-{os.getpid()}")

    def limit():
        os.mkdir(cg)
        limit_file = "memory.limit_in_bytes" if os.path.exists(os.path.join(cg, "memory.limit_in_bytes")) else "memory.max"
        with open(os.path.join(cg, limit_file), "w") as f:
            f.write(str(256 << 20))
        pid = open(state_root() + "/n3/osmod.pid").read().split()[0]
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(pid)
    try:
        fault_case(lambda job_id: None, expect, setup=limit, method=method)
    finally:
        if os.path.isdir(cg):
            for pid in open(os.path.join(cg, "cgroup.procs")).read().split():
                with open(os.path.join(os.path.dirname(cg), "cgroup.procs"), "w") as f:
                    f.write(pid)
            os.rmdir(cg)


def target_out_of_memory_stop():
    """Stop-and-copy into a 256 MiB memory cgroup: the OOM killer ends the move. When its victim
    is the restored process the one line says so (memory.events / memory.oom_control counted the
    kill); when it is the process receiving the image (which victim the kernel picks depends on
    timing), the source only sees the link go ("lost the link to target n3"). Either way the job
    runs on at n2, intact (checked by fault_case)."""
    target_out_of_memory(expect=("OOM killer", "lost the link to target n3"), method="stop")


def postcopy_big_verified():
    """The 1 GiB ticker moved with --method postcopy: it runs at n3 at once while its GiB follows;
    every tick in order and the sum over its whole memory intact."""
    with Testbed(3, cpus=CPUS):
        p = popen_run("n1", "--node", "n2", "python3", "-c", BIG_TICKER, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "python3 -c")
            time.sleep(2)
            r = migrate("n1", job["id"], "n3", method="postcopy", timeout=240)
            assert "by postcopy" in r.stdout, r.stdout
            moved_to("n1", "python3 -c", "n3", 1)
            rc, out, err = finish(p)
            assert rc == 0, (rc, err)
            lines = out.decode().splitlines()
            ticks = [int(l.split()[1]) for l in lines if l.startswith("tick ")]
            assert ticks == list(range(400)), "output lost or repeated across the post-copy move"
            assert lines[-1] == f"sum {sum(j % 256 for j in range(0, 1 << 30, 4099))}", lines[-1]
        finally:
            kill_started(p)


def link_cut_before_commit_postcopy():
    """Post-copy, n3's link cut while the job is restored there but not yet attached (fault point
    migrate.hold_before_attach): nothing committed, the job runs on at n2, intact."""
    def cut(job_id):
        image_flowing(job_id)
        subprocess.run(["ip", "-n", bridge_netns(), "link", "set", "v3", "down"], check=True)
        time.sleep(15)
        subprocess.run(["ip", "-n", bridge_netns(), "link", "set", "v3", "up"], check=True)
    os.environ["OSMO_FAULT"] = "migrate.hold_before_attach"
    try:
        fault_case(cut, "n3", method="postcopy")
    finally:
        del os.environ["OSMO_FAULT"]


def ticker_pids():
    """Pids of BIG_TICKER processes on this machine (every node shares our pid namespace view)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read()
            except OSError:
                continue
            if cmd.startswith(b"python3\0-c\0") and b"1 GiB of pages" in cmd:
                out.append(int(d))
    return out


def link_cut_after_commit_postcopy():
    """Post-copy, the source's (n2) link cut after the job runs at n3 while its memory is still on
    its way (fault point migrate.slow_postcopy): the job is lost, as documented. Home gets one
    clear line and exit status 252; no copy is left anywhere."""
    os.environ["OSMO_FAULT"] = "migrate.slow_postcopy"
    try:
        with Testbed(3, cpus=CPUS):
            p = popen_run("n1", "--node", "n2", "python3", "-c", BIG_TICKER, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
            try:
                job = wait_job("n1", "python3 -c")
                time.sleep(2)
                m = subprocess.Popen([OSMO, "testbed", "exec", "n1", "--", OSMO, "migrate", job["id"], "n3",
                                      "--method", "postcopy"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                try:
                    moved_to("n1", "python3 -c", "n3", 1)
                    subprocess.run(["ip", "-n", bridge_netns(), "link", "set", "v2", "down"], check=True)
                    rc, out, err = finish(p, timeout_s=120)
                    subprocess.run(["ip", "-n", bridge_netns(), "link", "set", "v2", "up"], check=True)
                    err = err.decode()
                    print(f"  osmo run exited {rc}; stderr: {err.strip()}")
                    assert rc == 252, (rc, err)
                    lost = [l for l in err.splitlines() if "lost" in l]
                    assert len(lost) == 1 and job["id"] in lost[0] and "n2" in lost[0], err
                    try:
                        m.wait(timeout=120)
                        print(f"  osmo migrate exited {m.returncode}: {m.stderr.read().strip()}")
                    except subprocess.TimeoutExpired:
                        pass
                    wait_until("no copy of the job left", lambda: not ticker_pids(), 60)
                    wait_until("the job listed nowhere", lambda: job_where("n1", "python3 -c") is None, 30)
                finally:
                    subprocess.run(["ip", "-n", bridge_netns(), "link", "set", "v2", "up"], check=False)
                    kill_started(m)
            finally:
                kill_started(p)
    finally:
        del os.environ["OSMO_FAULT"]


def source_daemon_restart():
    """The source's daemon restarts mid-migration: the job ends up running exactly once, intact."""
    with Testbed(3, cpus=CPUS):
        p = popen_run("n1", "--node", "n2", "python3", "-c", BIG_TICKER, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "python3 -c")
            time.sleep(2)
            m = subprocess.Popen([OSMO, "testbed", "exec", "n1", "--", OSMO, "migrate", job["id"], "n3"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            image_flowing(job["id"])
            osmo("testbed", "stop", "n2")
            osmo("testbed", "start", "n2")
            m.wait(timeout=240)
            rc, out, err = finish(p)
            assert rc == 0, (rc, err)
            ticks = [int(l.split()[1]) for l in out.decode().splitlines() if l.startswith("tick ")]
            assert ticks == list(range(400)), "output lost or repeated across the restart"
        finally:
            kill_started(p)


# ---- pre-copy: memory sent in rounds while the job runs, then a short freeze ----

# 128 MiB that a python3 job keeps writing (64 pages a tick, spread over the whole block) while it
# prints ticks; the sum over the block at the end tells whether every page arrived intact.
DIRTY_TICKER = r"""
import sys, time
block = bytearray(range(256)) * (512 << 10)
n = len(block) // 4096
for i in range(300):
    for k in range(64):
        block[((i * 64 + k) * 977 % n) * 4096 + (i % 4096)] = (i + k) % 256
    print("tick", i, flush=True)
    time.sleep(SLEEP)
print("sum", sum(block[::4099]), flush=True)
"""


def precopy_python_dirtying():
    """A python3 job writing its 128 MiB while it runs, moved with --method precopy n2 -> n3 -> home
    (n1): rounds of dirty pages, then a freeze with only the last ones; output identical to an
    undisturbed run (every tick, and the sum over the whole block)."""
    want = subprocess.run(["python3", "-c", DIRTY_TICKER.replace("SLEEP", "0")], capture_output=True, check=True,
                          timeout=300).stdout
    with Testbed(3, cpus=CPUS):
        p = popen_run("n1", "--node", "n2", "python3", "-c", DIRTY_TICKER.replace("SLEEP", "0.05"),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "python3 -c")
            time.sleep(2)
            for k, (asker, to, where) in enumerate([("n1", "n3", "n3"), ("n3", "home", "n1")], 1):
                r = migrate(asker, job["id"], to, method="precopy")
                assert "by precopy" in r.stdout and "pre-copy:" in r.stdout, r.stdout
                moved_to("n3", "python3 -c", where, k)
                time.sleep(0.5)
            rc, out, err = finish(p)
            assert rc == 0, (rc, err)
            assert out == want, f"output differs after 2 pre-copy moves ({len(out)} vs {len(want)} bytes)"
            assert err == b"", err
        finally:
            kill_started(p)


def precopy_pipeline():
    """`sh -c 'seq 1 50000000 | sha256sum'` (three processes, each tracked) moved with --method precopy
    n2 -> n3 -> n2; the digest is the undisturbed run's."""
    with Testbed(3, cpus=0.25):
        want = subprocess.run(PIPELINE, shell=True, capture_output=True, check=True, timeout=300).stdout
        p = popen_run("n1", "--node", "n2", "sh", "-c", PIPELINE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job = wait_job("n1", "sh -c")
            time.sleep(1)
            for k, (asker, to, where) in enumerate([("n1", "n3", "n3"), ("n3", "n2", "n2")], 1):
                r = migrate(asker, job["id"], to, method="precopy")
                assert "by precopy" in r.stdout, r.stdout
                moved_to("n3", "sh -c", where, k)
                time.sleep(0.5)
            rc, out, err = finish(p)
            assert rc == 0, (rc, err)
            assert out == want, f"output differs after 2 pre-copy moves: {out!r} vs {want!r}"
        finally:
            kill_started(p)


def link_cut_during_precopy():
    """n3's link cut while pre-copy's first round (1 GiB) flows: the job never stopped and runs on."""
    def cut(job_id):
        image_flowing(job_id)
        subprocess.run(["ip", "-n", bridge_netns(), "link", "set", "v3", "down"], check=True)
        time.sleep(15)
        subprocess.run(["ip", "-n", bridge_netns(), "link", "set", "v3", "up"], check=True)
    fault_case(cut, "n3", method="precopy", ticks=1200)


def target_killed_during_precopy():
    fault_case(lambda job_id: (image_flowing(job_id), osmo("testbed", "stop", "n3")), "n3", method="precopy",
               ticks=1200)


def flipped_chunk_precopy():
    """A flipped byte in a page chunk of the first pre-copy round: refused by the target."""
    os.environ["OSMO_FAULT"] = "migrate.flip_chunk"
    try:
        fault_case(lambda job_id: None, "failed authentication", method="precopy", ticks=1200)
    finally:
        del os.environ["OSMO_FAULT"]


def auto_picks():
    """--method auto (the default): bc (a small job) moves by stop-and-copy, the 1 GiB ticker (which
    hardly writes) by pre-copy; each answer says why, and the ticker's output and memory are intact."""
    with Testbed(3, cpus=CPUS), tempfile.TemporaryDirectory() as d:
        prog = os.path.join(d, "pi.bc")
        with open(prog, "w") as f:
            f.write(BC_PROG)
        # One job per node: the balancing loop would move one of two jobs sharing a node.
        b = popen_run("n1", "--node", "n3", "bc", "-l", prog, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p = popen_run("n1", "--node", "n2", "python3", "-c", BIG_TICKER.replace("range(400)", "range(800)"),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            bc_job = wait_job("n1", "bc -l")
            job = wait_job("n1", "python3 -c")
            time.sleep(8)  # the 1 GiB is built (at half a CPU that takes seconds): the probe sees the ticker
            r = migrate("n1", bc_job["id"], "home")
            assert "by stop (small job" in r.stdout, r.stdout
            r = migrate("n1", job["id"], "n3", timeout=240)
            assert "by precopy (" in r.stdout and "pre-copy" in r.stdout, r.stdout
            moved_to("n1", "python3 -c", "n3", 1)
            rc, out, err = finish(p)
            assert rc == 0, (rc, err)
            lines = out.decode().splitlines()
            ticks = [int(l.split()[1]) for l in lines if l.startswith("tick ")]
            assert ticks == list(range(800)), "output lost or repeated across the pre-copy move"
            assert lines[-1] == f"sum {sum(j % 256 for j in range(0, 1 << 30, 4099))}", lines[-1]
            rc, _, err = finish(b)
            assert rc == 0, (rc, err)
        finally:
            kill_started(p)
            kill_started(b)


if __name__ == "__main__":
    require_root("the migration testbed")
    run_cases({f.__name__: f for f in (bc_pi_three_hops, xz_to_file, python_stdin, kill_after_each_move,
                                       ctrl_c_at_home, ctrl_c_at_home_pty, pipeline_three_hops, children_running,
                                       zombie_kept, threads_refused, check_and_ps, target_daemon_killed, link_cut,
                                       flipped_chunk, target_out_of_memory, source_daemon_restart,
                                       postcopy_bc_there_and_back, postcopy_big_verified,
                                       link_cut_before_commit_postcopy, link_cut_after_commit_postcopy,
                                       precopy_python_dirtying, precopy_pipeline, link_cut_during_precopy,
                                       flipped_chunk_precopy, target_killed_during_precopy, auto_picks,
                                       target_out_of_memory_stop)})
