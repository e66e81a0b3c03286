# SPDX-License-Identifier: GPL-2.0-or-later
"""A job started from a terminal gets a terminal (issue 12), tested as a user types: each case
drives a real terminal (a tmux pane: send-keys, capture-pane) whose shell runs on testbed node n1,
and `osmo run --node n2` puts the job on another node. The caller's terminal settings (`stty -a`)
must be the same before and after every case, whatever way `osmo run` ended.

One ctest per case (see CMakeLists.txt); each brings a 3-node testbed up and always down again
(Testbed holds the testbed lock). Needs root and tmux, vi, top, python3 (scripts/lib.sh installs
them). Every wait is bounded.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from testbed import OSMO, Testbed, kill_node_cgroup, on, osmo, require_root, run_cases, wait_until  # noqa: E402

NODE_DIED = 252


class Pane:
    """A tmux session of its own (private server socket) whose one pane runs an interactive bash on
    testbed node `node`. The prompt is "$ "; commands are typed into it."""

    def __init__(self, node, cols=100, rows=30):
        self.sock = f"osmo-tty-test-{os.getpid()}"
        self.dir = tempfile.mkdtemp(prefix="osmo-tty-")
        conf = os.path.join(self.dir, "tmux.conf")
        with open(conf, "w") as f:
            f.write("set -g history-limit 50000\nset -g status off\n")
        shell = (f"{shlex.quote(OSMO)} testbed exec {node} -- env PS1='$ ' TERM=screen "
                 "bash --norc --noprofile -i")
        self.tmux("-f", conf, "new-session", "-d", "-s", "t", "-x", str(cols), "-y", str(rows), shell)
        self.wait_for("the shell's prompt", lambda s: s.rstrip().endswith("$"))
        # Short command lines (they must not wrap, even in a narrow pane): r2 ARGS is
        # `osmo run --node n2 ARGS`, from n1 to n2. COLUMNS must not tell ls the width: the pty does.
        self.line(f"r2() {{ {shlex.quote(OSMO)} run --node n2 \"$@\"; }}; unset COLUMNS LINES; clear")

    def tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True,
                              timeout=30, check=check)

    def keys(self, *keys):
        """tmux key names: C-c, C-d, Escape, Enter."""
        self.tmux("send-keys", "-t", "t", *keys)

    def type(self, text):
        self.tmux("send-keys", "-t", "t", "-l", text)

    def line(self, text):
        self.type(text)
        self.keys("Enter")

    def screen(self, history=False):
        args = ["capture-pane", "-p", "-t", "t"] + (["-S", "-", "-E", "-"] if history else [])
        return self.tmux(*args).stdout

    def wait_for(self, what, predicate, timeout_s=30, history=False):
        deadline = time.monotonic() + timeout_s
        s = ""
        while time.monotonic() < deadline:
            s = self.screen(history)
            if predicate(s):
                return s
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; screen:\n{s}")

    def wait_text(self, text, timeout_s=30):
        return self.wait_for(repr(text), lambda s: text in s, timeout_s)

    def clear(self):
        self.line("clear")
        self.wait_for("a cleared screen", lambda s: s.strip() == "$")
        self.tmux("clear-history", "-t", "t")

    def run(self, command, timeout_s=60):
        """Types `command; echo rc=$?` and returns the status once the line shows."""
        self.clear()
        self.line(f"{command}; echo rc=$?")
        return self.wait_rc(timeout_s)

    def wait_rc(self, timeout_s=60):
        # At a line's end, maybe after the job's last echo ("^C": osmo run exits 130, it is not
        # killed, so the shell adds no newline).
        s = self.wait_for("rc=N", lambda s: re.search(r"rc=\d+$", s, re.M), timeout_s, history=True)
        return int(re.search(r"rc=(\d+)$", s, re.M).group(1))

    def stty(self):
        """The pane's terminal settings as its shell sees them (stty -a: speed, size, every flag)."""
        path = os.path.join(self.dir, "stty")
        if os.path.exists(path):
            os.unlink(path)
        self.line(f"stty -a > {path}.tmp && mv {path}.tmp {path}")
        wait_until("stty -a", lambda: os.path.exists(path), 20)
        return open(path).read()

    def resize(self, cols, rows):
        self.tmux("resize-window", "-t", "t", "-x", str(cols), "-y", str(rows))

    def close(self):
        self.tmux("kill-server", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class Session:
    """A testbed and a pane on n1; checks on exit that the pane's terminal settings are unchanged."""

    def __init__(self, cols=100, rows=30):
        self.cols, self.rows = cols, rows

    def __enter__(self):
        require_root("tmux-driven tty tests")
        self.tb = Testbed(3).__enter__()
        try:
            self.pane = Pane("n1", self.cols, self.rows)
            self.before = self.pane.stty()
        except BaseException:
            self.tb.__exit__(None, None, None)
            raise
        return self.pane

    def __exit__(self, exc_type, *rest):
        try:
            if exc_type is None:
                after = self.pane.stty()
                assert after == self.before, f"terminal settings changed:\nbefore {self.before}\nafter  {after}"
        finally:
            self.pane.close()
            self.tb.__exit__(None, None, None)
        return False


def run_n2(args):
    return f"r2 {args}"


def python_prompt():
    with Session() as p:
        p.clear()
        p.line(run_n2("python3") + "; echo rc=$?")
        p.wait_for("python's prompt", lambda s: s.rstrip().endswith(">>>"))
        p.line("6*7")
        p.wait_for("42", lambda s: "\n42\n" in s)
        p.line("import os, sys; print(os.ttyname(0), sys.stdout.isatty(), os.get_terminal_size())")
        p.wait_text("True os.terminal_size(columns=100, lines=30)")
        # A window change reaches the running job (SIGWINCH, window-size frame).
        p.resize(90, 25)
        time.sleep(0.5)
        p.line("os.get_terminal_size()")
        p.wait_text("os.terminal_size(columns=90, lines=25)")
        p.resize(100, 30)
        time.sleep(0.5)
        p.keys("C-d")
        assert p.wait_rc() == 0


def expected_ls(cols):
    env = dict(os.environ, COLUMNS=str(cols))
    # What ls prints on a terminal of that width: columns, names quoted as for a shell (hence a
    # leading space when some name needs quotes), tabs (which the pane shows as spaces) left out.
    out = subprocess.run(["ls", "-C", "-T", "0", "--quoting-style=shell-escape", "/usr/bin"], capture_output=True,
                         text=True, env=env, check=True).stdout
    return [line.rstrip() for line in out.splitlines()]


def ls_output(p):
    s = p.screen(history=True)
    lines = [line.rstrip() for line in s.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("$ r2 ls /usr/bin"))
    end = next(i for i, line in enumerate(lines) if re.search(r"rc=\d+$", line))
    return [line for line in lines[start + 1:end] if line]


def ls_columns():
    with Session(cols=160, rows=40) as p:
        for cols in (160, 100):
            if cols != 160:
                p.resize(cols, 40)
                time.sleep(0.3)
            assert p.run(run_n2("ls /usr/bin")) == 0
            got = ls_output(p)
            want = [w for w in expected_ls(cols) if w]
            assert len(want) < len(os.listdir("/usr/bin")), "ls -C put one name per line: test is meaningless"
            assert got == want, (f"osmo run ls at {cols} columns: {len(got)} lines, expected {len(want)};"
                                 f" first {got[:3]} vs {want[:3]}")
            assert all(len(line) <= cols for line in got), [line for line in got if len(line) > cols][:3]
        p.resize(160, 40)  # as it was, for the settings check (stty -a shows the size)
        time.sleep(0.3)


def vi_edit():
    with Session() as p:
        path = os.path.join(p.dir, "note.txt")
        with open(path, "w") as f:
            f.write("hello\n")
        os.chmod(p.dir, 0o755)
        p.clear()
        p.line(run_n2(f"vi {path}") + "; echo rc=$?")
        p.wait_for("vi showing the file", lambda s: s.startswith("hello") and "~" in s)
        p.type("A world")
        p.keys("Escape")
        p.type(":wq")
        p.keys("Enter")
        assert p.wait_rc() == 0
        assert open(path).read() == "hello world\n", open(path).read()


def top_quits():
    with Session() as p:
        p.clear()
        p.line(run_n2("top -d 1") + "; echo rc=$?")
        first = p.wait_for("top's header", lambda s: s.startswith("top - ") and "Tasks:" in s).splitlines()[0]
        # It redraws: the clock in its first line moves on.
        p.wait_for("top redrawing", lambda s: s.startswith("top - ") and s.splitlines()[0][:14] != first[:14], 10)
        p.type("q")
        assert p.wait_rc() == 0


def ctrl_c():
    with Session() as p:
        p.clear()
        p.line(run_n2("sleep 100") + "; echo rc=$?")
        wait_until("sleep 100 in osmo ps", lambda: [j for j in json.loads(on("n1", "ps", "--json").stdout)
                                                     if j["cmd"] == "sleep 100" and j["node"] == "n2"], 20)
        p.keys("C-c")
        assert p.wait_rc(20) == 130


def job_control():
    with Session() as p:
        p.clear()
        p.line(run_n2("-- env PS1='inner$ ' bash --norc --noprofile -i") + "; echo rc=$?")
        p.wait_for("the inner prompt", lambda s: s.rstrip().endswith("inner$"))
        p.line("sleep 100")
        time.sleep(0.5)
        p.keys("C-z")
        p.wait_text("Stopped")
        p.line("jobs -l > /dev/null; fg")
        p.wait_for("sleep in the foreground again", lambda s: s.rstrip().endswith("sleep 100"))
        time.sleep(0.5)
        p.keys("C-c")
        p.wait_for("the inner prompt after Ctrl-C", lambda s: s.rstrip().endswith("inner$"))
        p.line("echo inner=$?; exit 3")
        assert p.wait_rc() == 3
        assert "inner=130" in p.screen(history=True)


def stopped_from_outside():
    """`osmo run` stopped by a SIGTSTP from elsewhere (in raw mode Ctrl-Z is the job's): the shell
    gets its terminal back as it was, and `fg` resumes the job, in raw mode again."""
    with Session() as p:
        pidfile = os.path.join(p.dir, "pid")
        before = p.stty()
        p.clear()
        p.line(f"sh -c 'echo $$ > {pidfile}; exec {shlex.quote(OSMO)} run --node n2 python3'")
        p.wait_for("python's prompt", lambda s: s.rstrip().endswith(">>>"))
        os.kill(int(open(pidfile).read()), signal.SIGTSTP)
        p.wait_text("Stopped")
        assert p.stty() == before, "the terminal was not given back as it was while osmo run is stopped"
        p.clear()
        p.line("fg; echo rc=$?")
        time.sleep(1)
        p.line("6*7")
        p.wait_for("42", lambda s: "\n42\n" in s)
        p.keys("C-d")
        assert p.wait_rc() == 0


def killed_and_lost():
    """The terminal comes back as it was when `osmo run` is killed (SIGTERM, SIGHUP), when the job's
    node daemon is killed -9 (the job goes on), and when the job's node dies (252)."""
    with Session() as p:
        pidfile = os.path.join(p.dir, "pid")
        for sig, want in ((signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 128 + signal.SIGHUP)):
            p.clear()
            if os.path.exists(pidfile):
                os.unlink(pidfile)
            # osmo run itself, under a pid we learn (exec: the pid is osmo run's).
            p.line(f"sh -c 'echo $$ > {pidfile}; exec {shlex.quote(OSMO)} run --node n2 python3'; echo rc=$?")
            p.wait_for("python's prompt", lambda s: s.rstrip().endswith(">>>"))
            os.kill(int(open(pidfile).read()), sig)
            assert p.wait_rc() == want
        # The daemon of the job's node killed -9: the job and its terminal go on.
        p.clear()
        p.line(run_n2("python3") + "; echo rc=$?")
        p.wait_for("python's prompt", lambda s: s.rstrip().endswith(">>>"))
        osmo("testbed", "stop", "n2")
        p.line("6*7")
        p.wait_for("42", lambda s: "\n42\n" in s)
        p.keys("C-d")
        assert p.wait_rc() == 0
        osmo("testbed", "start", "n2", timeout=60)
        # The whole node dies: the connection is lost.
        p.clear()
        p.line(run_n2("python3") + "; echo rc=$?")
        p.wait_for("python's prompt", lambda s: s.rstrip().endswith(">>>"))
        kill_node_cgroup("n2")
        assert p.wait_rc(30) == NODE_DIED


# A job that makes a child of its own the foreground process group of its terminal, then waits.
FOREGROUND_CHILD = """
import os, signal, time
signal.signal(signal.SIGINT, lambda *a: print("parent-int", flush=True))
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.setpgid(0, 0)
    time.sleep(100)
    os._exit(0)
os.setpgid(pid, pid)
os.tcsetpgrp(1, pid)
print("ready", flush=True)
_, st = os.waitpid(pid, 0)
print("child-signal", os.WTERMSIG(st) if os.WIFSIGNALED(st) else None, flush=True)
"""


def pipes_stay_pipes():
    """Only the streams that are terminals get the pty; -T refuses one, -t forces one; osmo ps shows
    the terminal, and the job is movable (its pty moves with it: tests/migrate/tty_migrate_*)."""
    probe = "python3 -c 'import sys; print(*(f.isatty() for f in (sys.stdin, sys.stdout, sys.stderr)))'"
    with Session() as p:
        assert p.run(run_n2(f"-- {probe} | cat")) == 0
        assert "True False True" in p.screen(history=True)
        assert p.run(run_n2(f"-- {probe} < /dev/null")) == 0
        assert "False True True" in p.screen(history=True)
        assert p.run(run_n2(f"-T -- {probe}")) == 0
        assert "False False False" in p.screen(history=True)
        assert p.run(f"test $({run_n2('ls /usr/bin')} | wc -l) -eq $(ls /usr/bin | wc -l)") == 0
        # stdin not a terminal: ours stays cooked, so Ctrl-C is a signal, which must reach the
        # foreground process group of the job's pty (here a child the job put there), not the job.
        script = os.path.join(p.dir, "fg.py")
        with open(script, "w") as f:
            f.write(FOREGROUND_CHILD)
        os.chmod(p.dir, 0o755)
        p.clear()
        p.line(run_n2(f"python3 {script} < /dev/null") + "; echo rc=$?")
        p.wait_text("ready")
        p.keys("C-c")
        rc = p.wait_rc(20)
        screen = p.screen(history=True)
        assert rc == 0 and "child-signal 2" in screen and "parent-int" not in screen, (rc, screen)
        # No terminal at all (not from the pane): -t forces one, with all three streams on it.
        for flag, want in (("-t", b"True True True\r\n"), ("-v", b"False False False\n")):
            r = subprocess.run([OSMO, "testbed", "exec", "n1", "--", OSMO, "run", flag, "--node", "n2", "--", "sh",
                                "-c", probe], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
            assert r.returncode == 0 and r.stdout == want, (flag, r)
        # osmo ps: the job's terminal, interactive, movable.
        p.clear()
        p.line(run_n2("python3") + "; echo rc=$?")
        p.wait_for("python's prompt", lambda s: s.rstrip().endswith(">>>"))
        jobs, _ = wait_until("python3 in osmo ps", lambda: [j for j in json.loads(on("n3", "ps", "--json").stdout)
                                                             if j["cmd"] == "python3"], 20)
        j = jobs[0]
        assert j["interactive"] is True and re.fullmatch(r"pts/\d+", j["tty"]), j
        assert j["movable"] is True and j["why_not"] is None, j
        table = on("n3", "ps").stdout
        assert re.search(r"\bTTY\b", table.splitlines()[0]) and j["tty"] in table, table
        p.keys("C-d")
        assert p.wait_rc() == 0


if __name__ == "__main__":
    run_cases({
        "python_prompt": python_prompt,
        "ls_columns": ls_columns,
        "vi_edit": vi_edit,
        "top_quits": top_quits,
        "ctrl_c": ctrl_c,
        "job_control": job_control,
        "stopped_from_outside": stopped_from_outside,
        "killed_and_lost": killed_and_lost,
        "pipes_stay_pipes": pipes_stay_pipes,
    })
