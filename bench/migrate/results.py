#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/migrate's parsing and its table, kept out of run.sh so that both can be tested without a
# testbed (`results.py self-test`, ctest bench.migrate.results). run.sh calls one subcommand per
# question; each prints tab-separated fields on stdout, or one line on stderr and exits 1.
#
#   migrate-json FILE          osmo migrate --json output -> freeze_ms, total_ms, to, method
#                              (freeze_ms "-" when absent)
#   ps-job ID                  osmo ps --json on stdin -> node, migrations of job ID ("absent")
#   recv-best FILE             osmo-migrate-bench recv output -> connect_to_last_ms,
#                              first_to_last_ms, gb_per_s of its "best" line
#   job-log FILE AFTER_LINE    the job's output after line AFTER_LINE -> ticks, longest stall ms
#                              ("-" if none over 10 ms), full check (intact|corrupt|none)
#   table FILE                 the result rows (TSV written by run.sh) -> the table with targets
#   self-test                  all of the above on sample lines
import json
import re
import sys

# The targets (issue 9, "How it is judged").
STOP_RATIO_MAX = 1.5        # stop-and-copy total within 1.5x of the plain copy
FREEZE_MS_MAX = 30.0        # pre-copy and post-copy freeze of a 1 GiB job dirtying 10 MB/s
FREEZE_TARGET_SIZE = 1 << 30
FREEZE_TARGET_DIRTY = 10

# Columns of the rows run.sh appends (one line per size x dirty rate x method).
ROW_FIELDS = ["size", "dirty", "method", "status", "freeze_ms", "total_ms", "copy_ms",
              "stall_ms", "job_after", "note"]


class Bad(Exception):
    pass


def number(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise Bad(f"{what} is not a non-negative number: {v!r}")
    return float(v)


def migrate_json(text):
    """The one JSON line of `osmo migrate --json` -> (freeze_ms or None, total_ms, to, method)."""
    lines = [l for l in text.splitlines() if l.strip()]
    if len(lines) != 1:
        raise Bad(f"expected one line of JSON from osmo migrate --json, got {len(lines)}")
    try:
        j = json.loads(lines[0])
    except json.JSONDecodeError as e:
        raise Bad(f"osmo migrate --json printed no valid JSON ({e}): {lines[0][:120]}")
    if not isinstance(j, dict):
        raise Bad(f"osmo migrate --json printed {type(j).__name__}, not an object")
    for k in ("id", "from", "to", "method", "total_ms"):
        if k not in j:
            raise Bad(f"osmo migrate --json: no \"{k}\" in {lines[0][:200]}")
    total = number(j["total_ms"], "total_ms")
    freeze = number(j["freeze_ms"], "freeze_ms") if j.get("freeze_ms") is not None else None
    return freeze, total, str(j["to"]), str(j["method"])


def ps_job(text, job_id):
    """`osmo ps --json` (an array of jobs) -> (node, migrations) of job_id, or None."""
    try:
        jobs = json.loads(text)
    except json.JSONDecodeError as e:
        raise Bad(f"osmo ps --json printed no valid JSON ({e})")
    if not isinstance(jobs, list):
        raise Bad("osmo ps --json did not print an array")
    for j in jobs:
        if isinstance(j, dict) and j.get("id") == job_id:
            return str(j.get("node", "?")), int(j.get("migrations", 0))
    return None


RECV_BEST = re.compile(r"^recv best_of=\d+ .*connect_to_last_ms=([\d.]+) "
                       r"first_to_last_ms=([\d.]+) gb_per_s=([\d.]+)")


def recv_best(text):
    for line in text.splitlines():
        m = RECV_BEST.match(line)
        if m:
            return tuple(float(x) for x in m.groups())
    raise Bad("no \"recv best_of=\" line in the receiver's output")


TICK = re.compile(r"^\d+ [0-9a-f]{8}$")
STALL = re.compile(r"^job: stalled ([\d.]+) ms at tick \d+$")


def job_log(text, after_line):
    """The job's output after line `after_line` -> (tick lines, longest stall ms or None, check)."""
    ticks, stall, check = 0, None, "none"
    for line in text.splitlines()[after_line:]:
        if TICK.match(line):
            ticks += 1
        elif (m := STALL.match(line)) and check == "none":  # a full check's own time is no stall
            stall = max(stall or 0.0, float(m.group(1)))
        elif line.startswith("job: full check at tick"):
            check = "intact" if line.endswith(" pages intact") else "corrupt"
    return ticks, stall, check


def human_size(n):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def fmt_ms(v):
    return "-" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.1f}")


def opt_float(s):
    return None if s in ("", "-") else float(s)


def target(row):
    """(description, met) of the target that applies to a row, or None."""
    size, dirty, method = int(row["size"]), int(row["dirty"]), row["method"]
    if method == "stop" and dirty == 0:
        total, copy = opt_float(row["total_ms"]), opt_float(row["copy_ms"])
        met = None if total is None or not copy else total / copy <= STOP_RATIO_MAX
        return f"total <= {STOP_RATIO_MAX}x copy", met
    if method in ("precopy", "postcopy") and size == FREEZE_TARGET_SIZE and \
            dirty == FREEZE_TARGET_DIRTY:
        freeze = opt_float(row["freeze_ms"])
        return f"freeze < {FREEZE_MS_MAX:.0f} ms", None if freeze is None else freeze < FREEZE_MS_MAX
    return None


def table(rows):
    head = ["size", "dirty MiB/s", "method", "freeze ms", "total ms", "copy ms", "total/copy",
            "job stall ms", "job after", "target"]
    out, notes = [], []
    for r in rows:
        ok = r["status"] == "ok"
        total, copy = opt_float(r["total_ms"]), opt_float(r["copy_ms"])
        t = target(r)
        if t is not None and not ok:  # a figure of a job that did not arrive intact counts for nothing
            t = (t[0], None)
        if t is None:
            tcol = ""
        elif t[1] is None:
            tcol = f"{t[0]}: no figure"
        else:
            tcol = f"{t[0]}: {'met' if t[1] else 'MISSED'}"
        out.append([
            human_size(int(r["size"])), r["dirty"], r["method"],
            fmt_ms(opt_float(r["freeze_ms"])) if ok else r["status"],
            fmt_ms(total) if ok else "-",
            fmt_ms(copy),
            f"{total / copy:.2f}" if ok and total is not None and copy else "-",
            fmt_ms(opt_float(r["stall_ms"])) if ok else "-",
            r["job_after"], tcol])
        if r["note"]:
            notes.append(f"  {human_size(int(r['size']))} dirty {r['dirty']} {r['method']}: "
                         f"{r['note']}")
    widths = [max(len(str(x[i])) for x in [head] + out) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(x, widths)).rstrip() for x in [head] + out]
    if notes:
        lines += ["notes:"] + notes
    return "\n".join(lines)


def by_size(rows):
    """One line per size and dirty rate with every method side by side (freeze / total ms) next
    to the copy: the methods' columns, e.g. stop-and-copy against post-copy."""
    methods = []
    for r in rows:
        if r["method"] not in methods:
            methods.append(r["method"])
    keys = []
    for r in rows:
        if (r["size"], r["dirty"]) not in keys:
            keys.append((r["size"], r["dirty"]))
    head = ["size", "dirty MiB/s", "copy ms"] + [f"{m} freeze / total ms" for m in methods]
    out = []
    for size, dirty in keys:
        line = [human_size(int(size)), dirty, "-"]
        for m in methods:
            cell = "-"
            for r in rows:
                if (r["size"], r["dirty"], r["method"]) == (size, dirty, m):
                    line[2] = fmt_ms(opt_float(r["copy_ms"]))
                    cell = (f"{fmt_ms(opt_float(r['freeze_ms']))} / {fmt_ms(opt_float(r['total_ms']))}"
                            if r["status"] == "ok" else r["status"])
            line.append(cell)
        out.append(line)
    widths = [max(len(str(x[i])) for x in [head] + out) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(x, widths)).rstrip() for x in [head] + out)


def read_rows(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(ROW_FIELDS):
                raise Bad(f"{path}:{n}: {len(parts)} fields, expected {len(ROW_FIELDS)}")
            rows.append(dict(zip(ROW_FIELDS, parts)))
    return rows


def self_test():
    sample = ('{"id":"5f3a9c01","from":"n2","to":"n3","method":"precopy","epoch":2,'
              '"image_bytes":1073741824,"pages":262144,"total_ms":812.4,"freeze_ms":21.7,'
              '"phases":{"precopy_rounds":3,"final_ms":21.7}}\n')
    assert migrate_json(sample) == (21.7, 812.4, "n3", "precopy")
    no_freeze = '{"id":"x","from":"n2","to":"n3","method":"stop","epoch":1,"total_ms":640}'
    assert migrate_json(no_freeze) == (None, 640.0, "n3", "stop")
    for bad in ("", "not json", '{"id":"x"}', "[1]", sample + sample,
                '{"id":"x","from":"a","to":"b","method":"stop","total_ms":"fast"}',
                '{"id":"x","from":"a","to":"b","method":"stop","total_ms":-1}'):
        try:
            migrate_json(bad)
            raise AssertionError(f"accepted {bad!r}")
        except Bad:
            pass

    ps = json.dumps([{"id": "aa", "node": "n2", "migrations": 0, "cmd": "x"},
                     {"id": "5f3a9c01", "node": "n3", "migrations": 1, "cmd": "job 1G"}], indent=2)
    assert ps_job(ps, "5f3a9c01") == ("n3", 1)
    assert ps_job(ps, "nope") is None
    assert ps_job("[]", "aa") is None

    recv = ("recv copy=1 bytes=67108864 connect_to_last_ms=40.2 first_to_last_ms=39.1 gb_per_s=1.72 "
            "memory=prefaulted verified=yes\n"
            "recv best_of=3 bytes=67108864 connect_to_last_ms=35.5 first_to_last_ms=34.9 "
            "gb_per_s=1.92 memory=prefaulted\n")
    assert recv_best(recv) == (35.5, 34.9, 1.92)
    try:
        recv_best("recv: no sender connected")
        raise AssertionError("accepted a receiver without a best line")
    except Bad:
        pass

    log = ("osmo run: job 5f3a9c01 runs on n2 as pid 1234\njob: 1 bytes\nready\n1 0fc1826b\n"
           "job: stalled 12.0 ms at tick 1\n2 af966467\njob: stalled 25.5 ms at tick 3\n3 02bc190a\n"
           "job: full check at tick 4: 262144 pages intact\njob: stalled 300.0 ms at tick 4\n")
    assert job_log(log, 0) == (3, 25.5, "intact")
    assert job_log(log, 5) == (2, 25.5, "intact")
    assert job_log(log, 100) == (0, None, "none")
    assert job_log("job: full check at tick 9: page 3 (generation 0) differs", 0)[2] == "corrupt"

    g = 1 << 30
    rows = [dict(zip(ROW_FIELDS, r)) for r in [
        [str(64 << 20), "0", "stop", "ok", "-", "60.0", "40.0", "55.0", "n3 intact", ""],
        [str(g), "0", "stop", "ok", "700", "700", "560", "690", "n3 intact", ""],
        [str(g), "0", "precopy", "not available", "-", "-", "560", "-", "n2 intact",
         "osmo migrate: unknown method precopy"],
        [str(g), "10", "precopy", "ok", "21.7", "812.4", "560", "24.0", "n3 intact", ""],
        [str(g), "10", "postcopy", "ok", "45.0", "600", "560", "-", "n3 intact", ""],
        [str(4 * g), "0", "stop", "ok", "3100", "3100", "2000", "-", "n3 intact", ""],
    ]]
    t = table(rows)
    lines = t.splitlines()
    assert lines[0].startswith("size"), t
    assert "total <= 1.5x copy: met" in lines[1] and "1.50" in lines[1], t   # 60/40 = 1.5
    assert "total <= 1.5x copy: met" in lines[2] and "1.25" in lines[2], t
    assert "not available" in lines[3] and "freeze" not in lines[3], t      # no target at dirty 0
    assert "freeze < 30 ms: met" in lines[4], t
    assert "freeze < 30 ms: MISSED" in lines[5], t
    assert "total <= 1.5x copy: MISSED" in lines[6] and "4 GiB" in lines[6], t
    assert "unknown method precopy" in t
    missing = dict(rows[3], status="not available", freeze_ms="-", total_ms="-")
    assert "freeze < 30 ms: no figure" in table([missing])
    side = by_size(rows).splitlines()
    assert "stop freeze / total ms" in side[0] and "postcopy freeze / total ms" in side[0], side
    assert all(len(l.split("  ")) > 1 for l in side[1:]), side
    not_moved = dict(rows[0], status="not moved", job_after="n2 intact")
    assert "no figure" in table([not_moved]) and ": met" not in table([not_moved])
    print("results.py self-test: ok")


def main(argv):
    try:
        cmd = argv[1] if len(argv) > 1 else ""
        if cmd == "migrate-json" and len(argv) == 3:
            freeze, total, to, method = migrate_json(open(argv[2]).read())
            print(f"{'-' if freeze is None else freeze}\t{total}\t{to}\t{method}")
        elif cmd == "ps-job" and len(argv) == 3:
            r = ps_job(sys.stdin.read(), argv[2])
            print("absent" if r is None else f"{r[0]}\t{r[1]}")
        elif cmd == "recv-best" and len(argv) == 3:
            print("\t".join(str(x) for x in recv_best(open(argv[2]).read())))
        elif cmd == "job-log" and len(argv) == 4:
            ticks, stall, check = job_log(open(argv[2], errors="replace").read(), int(argv[3]))
            print(f"{ticks}\t{'-' if stall is None else stall}\t{check}")
        elif cmd == "table" and len(argv) == 3:
            rows = read_rows(argv[2])
            print(table(rows))
            print()
            print("by method (freeze / total ms):")
            print(by_size(rows))
        elif cmd == "self-test" and len(argv) == 2:
            self_test()
        else:
            print("usage: results.py migrate-json FILE | ps-job ID | recv-best FILE | "
                  "job-log FILE AFTER_LINE | table FILE | self-test", file=sys.stderr)
            return 2
    except (Bad, OSError, ValueError) as e:
        print(f"results.py {argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
