#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ctest bench.migrate.job: osmo-migrate-bench does what run.sh relies on, without a testbed or
# osmo migrate. The job: refuses bad arguments, prints "ready" first, ends by itself, prints the
# same bytes in two runs (so a migrated run can be compared with an undisturbed one), answers
# SIGUSR1 with a full check, and (as root, which may write /proc/PID/mem) exits 3 when a byte of
# its memory is flipped. The baseline: a loopback copy, prefaulted and fresh, verified.
# Usage: job_test.sh PATH/TO/osmo-migrate-bench
set -euo pipefail
BENCH=${1:?usage: job_test.sh PATH/TO/osmo-migrate-bench}
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for bad in "job" "job 5000" "job 1X" "job 64M -1" "job 64M 1 --seconds 0" "job 64M 1 --seconds 601" \
           "recv 0 1M" "recv 1 1M --fresh --count 0" "send h 1 1M --fresh" "nothing"; do
  read -ra args <<<"$bad"
  rc=0; "$BENCH" "${args[@]}" >/dev/null 2>"$tmp/err" || rc=$?
  [ "$rc" = 2 ] || fail "'$bad' exited $rc, expected 2"
  [ -s "$tmp/err" ] || fail "'$bad' gave no error message"
done

# Two undisturbed runs print the same bytes; "ready" first; the job ends by itself.
for run in a b; do
  timeout 60 "$BENCH" job 64M 20 --seconds 3 >"$tmp/$run.out" 2>"$tmp/$run.err" ||
    fail "job run $run exited $?: $(tail -1 "$tmp/$run.err")"
done
cmp -s "$tmp/a.out" "$tmp/b.out" || fail "two runs printed different bytes: $(diff "$tmp/a.out" "$tmp/b.out" | head -4)"
[ "$(head -1 "$tmp/a.out")" = ready ] || fail "first line is not 'ready': $(head -1 "$tmp/a.out")"
[ "$(grep -cE '^[0-9]+ [0-9a-f]{8}$' "$tmp/a.out")" = 3 ] || fail "expected 3 tick lines: $(cat "$tmp/a.out")"
grep -qE '^done 3 [0-9a-f]{8}$' "$tmp/a.out" || fail "no 'done' line: $(tail -1 "$tmp/a.out")"
grep -q 'filled in' "$tmp/a.err" || fail "no fill line on stderr"

# SIGUSR1: a full check, the job goes on.
# Idle (0 MiB/s): nothing rewrites the page flipped below before the check reads it.
"$BENCH" job 16M 0 --seconds 20 >"$tmp/c.out" 2>"$tmp/c.err" &
p=$!; pids+=("$p")
for ((i = 0; i < 100; i++)); do grep -qx ready "$tmp/c.out" 2>/dev/null && break; sleep 0.1; done
kill -USR1 "$p"
for ((i = 0; i < 50; i++)); do grep -q 'full check' "$tmp/c.err" && break; sleep 0.1; done
grep -qE '^job: full check at tick [0-9]+: 4096 pages intact$' "$tmp/c.err" ||
  fail "no full check after SIGUSR1: $(cat "$tmp/c.err")"
kill -0 "$p" || fail "the job ended after SIGUSR1"

# A flipped byte is found (root only: writing another process's memory through /proc).
if [ "$(id -u)" = 0 ]; then
  python3 - "$p" <<'EOF' || fail "could not flip a byte of the job's memory"
import sys
pid = int(sys.argv[1])
for line in open(f"/proc/{pid}/maps"):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    if hi - lo == 16 << 20:
        with open(f"/proc/{pid}/mem", "r+b", buffering=0) as m:
            m.seek(lo + 5000); b = m.read(1); m.seek(lo + 5000); m.write(bytes([b[0] ^ 0x10]))
        sys.exit(0)
sys.exit(1)
EOF
  kill -USR1 "$p"
  rc=0; timeout 30 tail --pid="$p" -f /dev/null || true; wait "$p" || rc=$?
  [ "$rc" = 3 ] || fail "the job exited $rc after a flipped byte, expected 3"
  grep -q 'page 1 (generation 0) differs .* offset 904: memory is not intact' "$tmp/c.err" ||
    fail "no precise corruption report: $(tail -1 "$tmp/c.err")"
else
  kill "$p"; echo "not root: the flipped-byte check is skipped"
fi

# The baseline on loopback: prefaulted and fresh, every copy verified, a best line.
for flag in "" --fresh; do
  ok=0
  for _ in 1 2 3 4 5; do  # a port someone else holds: take another
    port=$((40000 + (RANDOM % 20000)))
    "$BENCH" recv "$port" 64M --count 2 $flag >"$tmp/recv" 2>&1 &
    rp=$!; pids+=("$rp")
    if timeout 120 "$BENCH" send 127.0.0.1 "$port" 64M --count 2 >"$tmp/send" 2>&1; then
      wait "$rp" || fail "recv $flag failed: $(tail -1 "$tmp/recv")"
      ok=1; break
    fi
    wait "$rp" || true
    grep -q 'bind to' "$tmp/recv" || fail "send $flag failed: $(tail -1 "$tmp/send"); recv: $(tail -1 "$tmp/recv")"
  done
  [ "$ok" = 1 ] || fail "no free port in 5 attempts"
  [ "$(grep -c 'verified=yes' "$tmp/recv")" = 2 ] || fail "recv did not verify 2 copies: $(cat "$tmp/recv")"
  [ "$(grep -c 'verified=yes' "$tmp/send")" = 2 ] || fail "send did not see 2 verdicts: $(cat "$tmp/send")"
  grep -E '^recv best_of=2 bytes=67108864 ' "$tmp/recv" || fail "no best line: $(cat "$tmp/recv")"
done
echo "job_test: ok"
