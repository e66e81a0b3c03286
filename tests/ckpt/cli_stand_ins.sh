#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt.cli_stand_ins: nothing lost by hand. A process holding a pipe to another process on fd 251
# (as CI runners leave one) used to be checkpointed with --kill and then refused by `osmo
# restore` ("fd 251 needs a stand-in"): gone for good. Now:
#   - `osmo checkpoint --kill` refuses it before touching it, naming fd 251 and the --fd option
#     the restore will need (the process keeps running, the output file is not even created);
#   - with --kill --stand-ins-ok it is checkpointed and killed, and the command says what the
#     restore needs;
#   - `osmo restore` refuses without a stand-in, refuses bad --fd specs precisely (leaving no
#     process), and restores it with --fd 251=null and with --fd 251=FILE; with a file, the
#     numbers the restored copy writes to fd 251 continue exactly after the last one the
#     original wrote into the pipe.
# Needs OSMO=/path/to/osmo, TICK=/path/to/ckpt_tick_writer, and root (skips outside CI). Every
# process started here is killed by pid.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/skip.sh
. "$here/../lib/skip.sh"
osmo=${OSMO:?usage: OSMO=/path/to/osmo TICK=/path/to/ckpt_tick_writer $0}
tick=${TICK:?usage: OSMO=/path/to/osmo TICK=/path/to/ckpt_tick_writer $0}
osmo_require_root "ckpt.cli_stand_ins (checkpoint/restore)"

work=$(mktemp -d /tmp/osmo-cli-stand-ins.XXXXXX) || exit 1
exe="$work/tick_writer"
orig="" cat_pid="" restored=()
kill_restored() { # PID: the restored process and its init (which takes the namespace along)
  local init
  init=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
  [ -n "$init" ] && [ "$init" -gt 1 ] && kill -KILL "$init" 2>/dev/null
  kill -KILL "$1" 2>/dev/null
}
cleanup() {
  local p
  [ -n "$orig" ] && kill -KILL "$orig" 2>/dev/null
  [ -n "$cat_pid" ] && kill -KILL "$cat_pid" 2>/dev/null
  for p in "${restored[@]}"; do kill_restored "$p"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() { echo "FAIL: ckpt.cli_stand_ins: $*" >&2; exit 1; }
# Processes running our private copy of the program (the original or any restored copy).
running_copies() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] && [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "$p/status" 2>/dev/null)" != Z ] &&
      echo "${p#/proc/}"
  done
}
lines() { wc -l <"$1" 2>/dev/null || echo 0; }
wait_lines() { # FILE N: until FILE has N lines (10 s at most)
  local i
  for i in $(seq 1 200); do [ "$(lines "$1")" -ge "$2" ] && return 0; sleep 0.05; done
  fail "$1 has $(lines "$1") lines after 10 s, want $2"
}

cp "$tick" "$exe" || fail "cannot copy $tick"
# fd 251 of the program: the write end of a pipe whose reader is a cat of ours.
exec {pw}> >(exec cat >"$work/pipe.out")
cat_pid=$!
( exec 251>&"$pw"
  for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && [ "$fd" != 251 ] && eval "exec $fd>&-"; done
  exec "$exe" </dev/null >>"$work/out" 2>/dev/null ) &
orig=$!
exec {pw}>&-  # the program holds the only write end now
wait_lines "$work/out" 20

# 1. --kill alone is refused before anything is touched.
"$osmo" checkpoint "$orig" -o "$work/img" --kill >"$work/refused.out" 2>"$work/refused.err"
rc=$?
[ "$rc" = 1 ] || fail "checkpoint --kill of a process with a pipe on fd 251 exited $rc, want 1 (a refusal)"
msg=$(cat "$work/refused.err")
[ "$(wc -l <"$work/refused.err")" = 1 ] || fail "the refusal is not one line: $msg"
for want in "osmo checkpoint: cannot checkpoint pid $orig with --kill" "--fd 251=PATH|null" "fd 251 (pipe pipe:[" \
            "write-only" "--stand-ins-ok"; do
  [[ "$msg" == *"$want"* ]] || fail "the refusal does not say '$want': $msg"
done
[ ! -e "$work/img" ] || fail "a refused checkpoint created $work/img"
state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$orig/status")
tracer=$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$orig/status")
[ "$tracer" = 0 ] || fail "the refused process is traced by $tracer"
case "$state" in S|R) ;; *) fail "the refused process is in state '$state'" ;; esac
before=$(lines "$work/out")
wait_lines "$work/out" $((before + 5))  # still running

# 2. --kill --stand-ins-ok: checkpointed and killed; the command says what the restore needs.
"$osmo" checkpoint "$orig" -o "$work/img" --kill --stand-ins-ok 2>"$work/dump.err" ||
  fail "checkpoint --kill --stand-ins-ok failed: $(cat "$work/dump.err")"
grep -q "^osmo checkpoint: pid $orig: restoring this image needs --fd 251=PATH|null for fd 251 (pipe pipe:\[[0-9]*\], write-only)$" \
  "$work/dump.err" || fail "checkpoint --stand-ins-ok does not say what the restore needs: $(cat "$work/dump.err")"
{ wait "$orig"; } 2>/dev/null
st=$?
orig=""
[ "$st" = 137 ] || fail "after checkpoint --kill the original ended with status $st, want 137"
{ wait "$cat_pid"; } 2>/dev/null  # the pipe's only writer is gone: cat ends
cat_pid=""
last=$(tail -n 1 "$work/pipe.out")
[[ "$last" =~ ^[0-9]+$ ]] || fail "the pipe carried no numbers ('$last')"

# 3. A plain restore refuses, and so do bad specs, each precisely, leaving no process.
expect_refused() { # WANT ARGS...: `osmo restore ARGS` must fail with an error containing WANT
  local want=$1
  shift
  "$osmo" restore "$@" >"$work/r.out" 2>"$work/r.err"
  local rc=$?
  [ "$rc" = 1 ] || fail "osmo restore $* exited $rc, want 1 ($(head -c 300 "$work/r.err"))"
  grep -q "^osmo restore: " "$work/r.err" || fail "osmo restore $*: no 'osmo restore: ' line: $(cat "$work/r.err")"
  grep -qF -- "$want" "$work/r.err" || fail "osmo restore $*: the error does not say '$want': $(cat "$work/r.err")"
  [ -z "$(running_copies)" ] || fail "osmo restore $* left a process running: $(running_copies)"
}
expect_refused "fd 251 (pipe pipe:[" "$work/img"
expect_refused "needs a stand-in: give one with --fd 251=PATH or --fd 251=null" "$work/img"
expect_refused "--fd 251: expected N=PATH or N=null" "$work/img" --fd 251
expect_refused "--fd x=null: 'x' is not an fd number" "$work/img" --fd x=null
expect_refused "--fd 251=: no file after '='" "$work/img" --fd 251=
expect_refused "--fd 251 given twice" "$work/img" --fd 251=null --fd "251=$work/x"
expect_refused "--fd 7=null: the image has no fd 7" "$work/img" --fd 251=null --fd 7=null
expect_refused "--fd 1=null: fd 1 (file $work/out, write-only) is restored by itself" "$work/img" --fd 251=null --fd 1=null
expect_refused "--fd 251=$work/no/such/dir: cannot open $work/no/such/dir for writing" "$work/img" --fd "251=$work/no/such/dir"

# 4. --fd 251=null: restored, and it runs (its stdout, the same file, goes on growing).
pid=$("$osmo" restore "$work/img" --fd 251=null --detach 2>"$work/r.err") || fail "restore --fd 251=null: $(cat "$work/r.err")"
restored+=("$pid")
before=$(lines "$work/out")
wait_lines "$work/out" $((before + 10))
[ "$(readlink "/proc/$pid/fd/251")" = /dev/null ] || fail "fd 251 of the restored process is $(readlink "/proc/$pid/fd/251"), not /dev/null"
kill_restored "$pid"

# 5. --fd 251=FILE (created): the numbers on fd 251 continue right after the pipe's last one.
pid=$("$osmo" restore --fd "251=$work/stand-in" --detach "$work/img" 2>"$work/r.err") ||
  fail "restore --fd 251=FILE: $(cat "$work/r.err")"
restored+=("$pid")
wait_lines "$work/stand-in" 10
first=$(head -n 1 "$work/stand-in")
[ "$first" = $((last + 1)) ] || fail "the restored copy wrote $first first to fd 251, the original's last was $last"
awk -v f="$first" 'NR <= 10 && $1 != f + NR - 1 { bad = 1 } END { exit bad }' "$work/stand-in" ||
  fail "the stand-in file's numbers are not consecutive: $(head -n 10 "$work/stand-in" | tr '\n' ' ')"
kill_restored "$pid"
echo "PASS: ckpt.cli_stand_ins: --kill refused with the --fd needed, accepted with --stand-ins-ok, 9 bad" \
     "restores refused precisely, restored with --fd 251=null and --fd 251=FILE (continues at $first after $last)"
