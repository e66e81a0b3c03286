#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ops.progress: `osmo checkpoint` and `osmo restore` show a progress line (phase, bytes, rate) on
# a terminal, redrawn in place and erased before the result line, and stay quiet when stderr is
# not a terminal or with --quiet (a log or a pipe never gets carriage returns). The terminal is
# util-linux's `script` (a pty). The process checkpointed is a python3 of ours holding 512 MiB of
# written memory, so the image takes more than one redraw period to write; every process started
# here is killed by pid. Needs root (checkpoint/restore; skips outside CI).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/skip.sh
. "$here/../lib/skip.sh"
osmo=$1
osmo_require_root "ops.progress (checkpoint/restore)"
command -v script >/dev/null || { echo "FAIL: script (util-linux) is missing" >&2; exit 1; }

work=$(mktemp -d /tmp/osmo-progress-test.XXXXXX)
holder="" restored=""
cleanup() {
  [ -n "$holder" ] && kill -KILL "$holder" 2>/dev/null
  if [ -n "$restored" ]; then
    local init
    init=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$restored/status" 2>/dev/null)
    [ -n "$init" ] && [ "$init" -gt 1 ] && kill -KILL "$init" 2>/dev/null
    kill -KILL "$restored" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
failures=0
check() {  # check NAME CONDITION-STATUS DETAIL-FILE
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1:" >&2; cat -v "$3" >&2; failures=$((failures + 1)); fi
}

python3 -c 'import os, sys, time
os.closerange(3, 1024)  # whatever fds this shell was given need no stand-in at restore
x = b"p" * (512 << 20)
sys.stdout.write("ready\n"); sys.stdout.flush()
time.sleep(120)' </dev/null >"$work/ready" 2>/dev/null &
holder=$!
for _ in $(seq 1 300); do grep -q ready "$work/ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/ready" || { echo "FAIL: the memory holder did not start" >&2; exit 1; }
: >"$work/ready"  # its stdout is a file: the restore needs no stand-in for it

# On a terminal: frames with the phase and the bytes, each from column 0, erased at the end.
script -qec "$osmo checkpoint $holder -o $work/a.img" "$work/tty" >/dev/null
rc=$?
{ [ $rc -eq 0 ] && grep -q "freezing" "$work/tty" && grep -q "writing image · [0-9.]* MiB" "$work/tty" \
  && grep -q $'\r\033\\[K' "$work/tty" && grep -q "MiB image, frozen" "$work/tty"; }
check "checkpoint on a terminal shows phase, bytes and rate, then erases the line" $? "$work/tty"

# stderr not a terminal: the result line only.
"$osmo" checkpoint "$holder" -o "$work/b.img" 2>"$work/plain"
{ grep -q "MiB image, frozen" "$work/plain" && ! grep -q $'\r' "$work/plain" && ! grep -q "writing image" "$work/plain"; }
check "checkpoint into a pipe or file: no progress line" $? "$work/plain"

# --quiet on a terminal: the result line only.
script -qec "$osmo --quiet checkpoint $holder -o $work/c.img" "$work/quiet" >/dev/null
{ grep -q "MiB image, frozen" "$work/quiet" && ! grep -q "writing image" "$work/quiet"; }
check "--quiet on a terminal: no progress line" $? "$work/quiet"

# A restore from a pipe counts the bytes it reads.
kill -KILL "$holder"; wait "$holder" 2>/dev/null; holder=""
script -qec "cat $work/a.img | $osmo restore --detach -" "$work/rtty" >/dev/null
# The pid follows the erased line: "\r\033[K<pid>\r\n".
restored=$(tr -d '\r' <"$work/rtty" | sed 's/.*\x1b\[K//' | grep -a -E '^[0-9]+$' | head -1)
{ [ -n "$restored" ] && grep -q "restoring · [0-9.]* MiB" "$work/rtty"; }
check "restore from a pipe on a terminal shows the bytes read" $? "$work/rtty"

exit $((failures > 0))
