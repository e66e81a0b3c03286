#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt.cli_tree_faults: a tree is frozen and restored as one unit, never in part. A pipeline
# `sh -c 'seq 1 5000000 | { sleep 8; sha256sum; }'` (private copies of sh, seq, sleep and sha256sum,
# so its processes are recognisable) is checkpointed with `--tree --kill` under every dump fault
# point: each must fail and leave every process of the tree running and untraced. Then it is
# checkpointed for real and restored under every restore fault point: each must fail and leave
# no process of ours behind. The last restore must finish with the undisturbed digest.
# Needs OSMO=/path/to/osmo and root (skips outside CI). Processes are killed by the pids and the
# process group started here only.
set -u
[ -n "${TREE_FAULTS_DEBUG:-}" ] && set -x
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/skip.sh
. "$here/../lib/skip.sh"
osmo=${OSMO:?usage: OSMO=/path/to/osmo $0}
osmo_require_root "ckpt.cli_tree_faults (checkpoint/restore of a tree)"

work=$(mktemp -d /tmp/osmo-cli-tree-faults.XXXXXX) || exit 1
orig=""
ours() {  # every process running one of our private copies
  local p
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/exe" 2>/dev/null)" in "$work/bin/"*) echo "${p#/proc/}" ;; esac
  done
}
cleanup() {
  local p
  [ -n "$orig" ] && kill -KILL -- "-$orig" 2>/dev/null
  for p in $(ours); do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() { echo "FAIL: ckpt.cli_tree_faults: $*" >&2; exit 1; }

mkdir "$work/bin"
for b in sh seq sleep sha256sum; do cp "$(command -v "$b")" "$work/bin/$b" || fail "cannot copy $b"; done
pipeline='seq 1 5000000 | { sleep 8; sha256sum; }'
want=$(PATH=$work/bin "$work/bin/sh" -c "$pipeline")

# The tree in its own session and group; only fds 0-2.
( for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
  PATH=$work/bin exec "$(command -v setsid)" "$work/bin/sh" -c "$pipeline" </dev/null >"$work/out" 2>"$work/err" ) &
orig=$!
for _ in $(seq 100); do [ "$(ours | wc -w)" -ge 4 ] && break; sleep 0.02; done
tree=$(ours)
[ "$(echo "$tree" | wc -w)" -ge 4 ] || fail "the pipeline did not start 4 processes: $tree"

faults=$("$osmo" checkpoint --list-faults | awk '{print $1}')
for f in $(echo "$faults" | grep '^dump\.'); do
  OSMO_FAULT=$f "$osmo" checkpoint --tree "$orig" -o "$work/img" --kill >"$work/dump.out" 2>"$work/dump.err" &&
    fail "checkpoint under fault $f succeeded"
  grep -q "fault injected at $f" "$work/dump.err" || fail "fault $f: $(cat "$work/dump.err")"
  for p in $tree; do
    s=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$p/status")
    t=$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$p/status")
    case "$s" in S|R|D) ;; *) fail "fault $f left pid $p in state '$s'" ;; esac
    [ "$t" = 0 ] || fail "fault $f left pid $p traced by $t"
  done
done
"$osmo" checkpoint --tree "$orig" -o "$work/img" --kill 2>"$work/dump.err" || fail "checkpoint: $(cat "$work/dump.err")"
{ wait "$orig"; } 2>/dev/null
orig=""
sleep 0.2
[ -z "$(ours)" ] || fail "checkpoint --tree --kill left processes: $(ours)"

for f in $(echo "$faults" | grep '^restore\.'); do
  OSMO_FAULT=$f timeout -s KILL 60 "$osmo" restore "$work/img" >"$work/restore.out" 2>"$work/restore.err" &&
    fail "restore under fault $f succeeded"
  grep -q "fault injected at $f" "$work/restore.err" || fail "fault $f: $(cat "$work/restore.err")"
  sleep 0.3
  [ -z "$(ours)" ] || fail "restore under fault $f left processes: $(ours)"
done
timeout -s KILL 60 "$osmo" restore "$work/img" 2>"$work/restore.err" || fail "restore: $(cat "$work/restore.err")"
[ "$(cat "$work/out")" = "$want" ] || fail "digest '$(cat "$work/out")', want '$want'"
echo "PASS ckpt.cli_tree_faults: $(echo "$faults" | grep -c '^dump\.') dump faults left the tree running," \
     "$(echo "$faults" | grep -c '^restore\.') restore faults left nothing, the restored tree finished with the right digest"
