#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt_real.python_loop: python3 running a pure-Python loop (a 64-bit LCG, 8 million steps) and
# printing a progress line every 100000 steps, checkpointed after 30 of its 80 lines, restored,
# and its output compared with the reference byte for byte. Needs OSMO=/path/to/osmo.
name=python_loop
bin=/usr/bin/python3
. "$(dirname "$0")/real_lib.sh"
real_setup
# The private copy of the interpreter cannot find its standard library next to itself.
export PYTHONHOME=/usr PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0
cat >"$work/in" <<'PY'
x = 1
for i in range(8_000_000):
    x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    if i % 100_000 == 0:
        print(f"step {i:>8} x {x:>20}", flush=True)
print("done", x)
PY
real_run_reference -u -
[ "$ref_status" = 0 ] || finish fail "reference python exited with $ref_status: $(head -c 300 "$work/ref.err")"
[ "$(wc -l <"$work/ref.out")" = 81 ] || finish fail "reference output has $(wc -l <"$work/ref.out") lines, want 81"
real_run_checkpointed "progress_out_lines 30" -u -
