# SPDX-License-Identifier: GPL-2.0-or-later
"""A job with a terminal moves with it (issues 9 and 12), tested as a user types: a tmux pane whose
shell runs on testbed node n1 (tests/run/tty_testbed_test.py's Pane and Session: send-keys,
capture-pane, `stty -a` of the pane compared before and after), `osmo run --node n2` puts the job
on n2, and `osmo migrate` moves it while it waits for keys, to n3 and back home. After every move
the job must still answer keystrokes with the right echo, line editing, window size and Ctrl-C,
through the new pty on its new node.

One ctest per case (CMakeLists.txt); each brings a 3-node testbed up and always down again. Needs
root, tmux, python3, bash. Every wait is bounded.
"""
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
sys.path.insert(0, os.path.join(HERE, "..", "run"))
from testbed import on, run_cases, wait_until  # noqa: E402
from tty_testbed_test import Session, run_n2  # noqa: E402


def job_listed(cmd):
    """The job whose program (first word of its command line) is `cmd`, as n1 lists it."""
    found = [j for j in json.loads(on("n1", "ps", "--json", timeout=30).stdout) if j["cmd"].split()[0] == cmd]
    assert len(found) <= 1, f"{len(found)} jobs {cmd!r}: {found}"
    return found[0] if found else None


def move(cmd, to, count, method=None):
    """`osmo migrate -v [--method M]` of the job `cmd` to `to` (a node or home), asked from n3; waits
    until osmo ps lists it there with `count` moves and its new terminal. Returns its listing."""
    j, _ = wait_until(f"{cmd} listed", lambda: job_listed(cmd), 20)
    assert j["movable"] is True, f"a job with a terminal must be movable now: {j}"
    extra = ["--method", method] if method else []
    r = on("n3", "migrate", "-v", j["id"], to, *extra, check=False, timeout=120)
    assert r.returncode == 0, f"osmo migrate {cmd} {to}: {r.returncode} {r.stderr.strip()}"
    print(f"  {r.stdout.strip()}")
    node = "n1" if to == "home" else to

    def there():
        k = job_listed(cmd)
        return k if k and k["node"] == node and k["migrations"] == count else None
    k, _ = wait_until(f"{cmd} on {node} after {count} moves", there, 20)
    assert k["interactive"] is True and re.fullmatch(r"pts/\d+", k["tty"] or ""), k
    return k


def prompts(screen):
    return screen.count(">>> ")


def python_answers(p, expr, want):
    """Types `expr` at python's prompt and waits for `want` on a line of its own right after the
    prompt line showing exactly `expr` (an echo doubled by a wrong pty setting would not match)."""
    before = prompts(p.screen(history=True))
    p.line(expr)
    p.wait_for(f"{expr} -> {want}",
               lambda s: prompts(s) > before and s.split(f">>> {expr}\n")[-1].startswith(f"{want}\n"), 30,
               history=True)


def python_idle_moved():
    """Interactive python3 (osmo run -t) moved twice while idle at its prompt (n2 -> n3 -> home):
    after each move the same variables, echo of what is typed (once), line editing (backspace,
    cursor keys), the window size (the pane's, and a resize after the move reaches the job), and
    Ctrl-C interrupting a running loop (KeyboardInterrupt, the prompt back); Ctrl-D ends it with 0."""
    with Session() as p:
        p.clear()
        p.line(run_n2("-t python3") + "; echo rc=$?")
        p.wait_for("python's prompt", lambda s: s.rstrip().endswith(">>>"))
        p.line("import os; x = 6*7")
        python_answers(p, "x", "42")
        first = job_listed("python3")
        for count, to in ((1, "n3"), (2, "home")):
            before = p.screen(history=True)
            k = move("python3", to, count)
            assert k["tty"], k
            time.sleep(0.3)
            assert p.screen(history=True) == before, "the move changed the screen"
            # Echo, once: the typed text shows exactly once, with the answer under it.
            python_answers(p, f"x+{count}", str(42 + count))
            # Line editing in the job's line editor: "y-2", two steps left, the "y" erased with
            # backspace, "x" typed in its place: python evaluates "x-2".
            before = prompts(p.screen(history=True))
            p.type("y-2")
            p.keys("Left", "Left", "BSpace")
            p.type("x")
            p.keys("Enter")
            p.wait_for("x-2 -> 40 after editing",
                       lambda s: prompts(s) > before and s.split(">>> x-2\n")[-1].startswith("40\n"), 30,
                       history=True)
            # The window: the pane's size came along in the image, and a resize now reaches the job.
            python_answers(p, "tuple(os.get_terminal_size())", "(100, 30)")
            p.resize(90, 25)
            time.sleep(0.5)
            python_answers(p, "tuple(os.get_terminal_size())", "(90, 25)")
            p.resize(100, 30)
            time.sleep(0.5)
            # Ctrl-C through the new line discipline: SIGINT to python, the loop stops.
            p.line("while True: pass")
            p.keys("Enter")
            time.sleep(0.5)
            p.keys("C-c")
            p.wait_for("KeyboardInterrupt", lambda s: "KeyboardInterrupt" in s and s.rstrip().endswith(">>>"), 30)
            python_answers(p, "x", "42")
        assert first["tty"] is not None
        p.keys("C-d")
        assert p.wait_rc(30) == 0


def cat_moved_twice():
    """`cat` under osmo run -t (canonical mode: the line discipline echoes, cat repeats the line)
    moved twice (stop-and-copy, then post-copy), each time with half a line typed and not yet read (it must arrive whole, echoed
    once); the keys typed after each move round-trip (echo + cat's copy); a Ctrl-C after the last
    move kills it through the new pty's line discipline (130)."""
    with Session() as p:
        p.clear()
        p.line(run_n2("-t cat") + "; echo rc=$?")
        # Typed only once the job runs: before that the pane is not raw yet and would echo too.
        wait_until("cat listed", lambda: job_listed("cat"), 20)
        time.sleep(0.5)
        p.type("before")
        p.keys("Enter")
        p.wait_for("before, twice", lambda s: s.count("before") == 2)
        for count, to, method in ((1, "n3", None), (2, "home", "postcopy")):
            # Half a line typed before the move: the old pty's line discipline holds it (echoed,
            # not yet read by cat); it must reach the new pty, without a second echo.
            half = f"half{count}"
            p.type(half)
            p.wait_for(f"{half} echoed", lambda s, w=half: s.count(w) == 1)
            move("cat", to, count, method)
            p.type("+done")
            p.keys("Enter")
            whole = f"{half}+done"
            s = p.wait_for(f"{whole}, echoed and copied", lambda s, w=whole: s.count(w) == 2, 30)
            assert s.count(half) == 2, f"{half} lost or echoed twice:\n{s}"
            word = f"after-move-{count}"
            p.type(word)
            p.keys("Enter")
            p.wait_for(f"{word}, echoed and copied", lambda s, w=word: s.count(w) == 2, 30)
        p.keys("C-c")
        assert p.wait_rc(30) == 130


def bash_foreground_ctrl_c():
    """An interactive bash (job control on its pty) with `sleep 100` in the foreground, moved: the
    sleep is still the terminal's foreground group on the new node, so Ctrl-C ends the sleep and not
    bash, which prints its prompt and goes on."""
    with Session() as p:
        p.clear()
        p.line(run_n2("-t env PS1='in$ ' bash --norc --noprofile -i") + "; echo rc=$?")
        p.wait_for("the inner prompt", lambda s: s.rstrip().endswith("in$"))
        p.line("sleep 100")
        time.sleep(1)
        move("env", "n3", 1)
        p.keys("C-c")
        p.wait_for("the inner prompt after Ctrl-C", lambda s: s.rstrip().endswith("in$"), 30)
        p.line("echo status=$?")
        p.wait_text("status=130")
        p.line("exit 7")
        assert p.wait_rc(30) == 7


if __name__ == "__main__":
    run_cases({
        "python_idle_moved": python_idle_moved,
        "cat_moved_twice": cat_moved_twice,
        "bash_foreground_ctrl_c": bash_foreground_ctrl_c,
    })
