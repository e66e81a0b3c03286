#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt.cli_detach: `osmo restore --detach` must return only when the restored tree no longer
# depends on it. init used to keep PR_SET_PDEATHSIG until it read the caller's "go", while the
# command printed the pid and exited at once: when the command won that race, init and the
# restored process died with it (15 of 38 detached restores of a tiny program). A private copy
# of sleep is checkpointed once and restored detached RESTORES times through the CLI; every
# restored process must be alive afterwards. Every process started here is killed by pid.
# Needs OSMO=/path/to/osmo and root (skips outside CI).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/skip.sh
. "$here/../lib/skip.sh"
osmo=${OSMO:?usage: OSMO=/path/to/osmo $0}
restores=${RESTORES:-200}
osmo_require_root "ckpt.cli_detach (checkpoint/restore)"

work=$(mktemp -d /tmp/osmo-cli-detach.XXXXXX) || exit 1
orig="" restored=()
cleanup() {
  local p init
  [ -n "$orig" ] && kill -KILL "$orig" 2>/dev/null
  for p in "${restored[@]}"; do
    # init (the restored process's parent, PID 1 of its namespace) takes the namespace with it.
    init=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$p/status" 2>/dev/null)
    [ -n "$init" ] && [ "$init" -gt 1 ] && kill -KILL "$init" 2>/dev/null
    kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() { echo "FAIL: ckpt.cli_detach: $*" >&2; exit 1; }

cp "$(command -v sleep)" "$work/sleep" || fail "cannot copy sleep"
# Only fds 0-2, all /dev/null: the restore needs no stand-in and keeps nothing of ours open.
( for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
  exec "$work/sleep" 100000 </dev/null >/dev/null 2>&1 ) &
orig=$!
sleep 0.2
"$osmo" checkpoint "$orig" -o "$work/img" --kill 2>"$work/dump.err" || fail "checkpoint: $(cat "$work/dump.err")"
wait "$orig" 2>/dev/null
orig=""

start=$(date +%s.%N)
for i in $(seq 1 "$restores"); do
  pid=$("$osmo" restore --detach "$work/img" 2>"$work/restore.err") ||
    fail "restore $i failed: $(head -c 300 "$work/restore.err")"
  [[ "$pid" =~ ^[0-9]+$ ]] || fail "restore $i printed '$pid', not a pid"
  restored+=("$pid")
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
# A process killed with its init goes within microseconds of the command's exit; give the
# slowest a moment anyway.
sleep 0.3
dead=0 first_dead=""
for p in "${restored[@]}"; do
  state=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$p/status" 2>/dev/null)
  exe=$(readlink "/proc/$p/exe" 2>/dev/null)
  if [ -z "$state" ] || [ "$state" = Z ] || [ "$exe" != "$work/sleep" ]; then
    dead=$((dead + 1))
    [ -n "$first_dead" ] || first_dead="$p (state '${state:-gone}', exe '${exe:-?}')"
  fi
done
[ "$dead" = 0 ] || fail "$dead of $restores detached restores are not running afterwards (first: pid $first_dead)"
echo "PASS: ckpt.cli_detach: $restores detached restores in ${elapsed}s, all $restores restored processes alive"
