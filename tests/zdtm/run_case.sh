#!/usr/bin/env bash
# run_case.sh: runs one ZDTM-style conformance case against the checkpoint/restore engine.
#
# A case program (tests/zdtm/cases/<name>.c, protocol in lib/zdtm.h) sets up one kind of state,
# creates WORK/ready, waits for WORK/go, then verifies its state and prints PASS/FAIL lines and a
# final "RESULT PASS|FAIL" line to its stdout, which is a regular file here (WORK/out).
#
# Modes:
#   plain   no checkpoint at all: validates the case program itself (ready -> go -> PASS).
#   samens  checkpoint --kill, restore into a new process in this network namespace.
#   netns   the same, restored into a network namespace of our own (osmo restore --netns).
# Kinds:
#   restore         checkpoint and restore must work and the case must pass afterwards.
#   refuse-dump     checkpoint must fail with exactly one line
#                   "osmo checkpoint: cannot checkpoint pid N: <reason>" (reason matching --reason),
#                   leave the process running untraced and not stopped, and the case must still
#                   pass when told go.
#   refuse-restore  checkpoint works, then --hook changes the world (e.g. a file the case has
#                   open), and restore must fail with "osmo restore: ..." matching --reason and
#                   leave no half-restored process behind.
#
# Expected failures: tests/zdtm/expected_failures.txt lists test names (zdtm.<case>.<mode>, or
# zdtm.<case>.* for both engine modes) with a reason. A listed test that fails is reported XFAIL and
# exits 0; a listed test that passes is reported XPASS and exits 1, so the list stays true.
#
# Exit: 0 pass (or XFAIL), 1 fail (or XPASS), 77 skipped (not root, outside CI).
set -u

usage() {
  echo "usage: $0 --osmo PATH --bin PATH --name NAME --mode plain|samens|netns" \
       "[--kind restore|refuse-dump|refuse-restore] [--reason ERE] [--hook tracer|change-file]" \
       "[--tracer PATH] [--xfail-file PATH]" >&2
  exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
osmo="" bin="" name="" mode="" kind=restore reason="" hook="" tracer=""
xfail_file="$here/expected_failures.txt"
while [ $# -gt 0 ]; do
  case "$1" in
    --osmo) osmo=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --kind) kind=$2; shift 2 ;;
    --reason) reason=$2; shift 2 ;;
    --hook) hook=$2; shift 2 ;;
    --tracer) tracer=$2; shift 2 ;;
    --xfail-file) xfail_file=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$bin" ] && [ -n "$name" ] && [ -n "$mode" ] || usage
case "$mode" in plain|samens|netns) ;; *) usage ;; esac
case "$kind" in restore|refuse-dump|refuse-restore) ;; *) usage ;; esac
[ "$mode" = plain ] || [ -n "$osmo" ] || usage

test_name="zdtm.$name.$mode"
# shellcheck source=../lib/skip.sh
. "$here/../lib/skip.sh"
osmo_require_root "$test_name (checkpoint/restore, namespaces, credentials)"

# Bounds (seconds). Every wait below is bounded; ctest's TIMEOUT is the outer bound.
READY_TIMEOUT=20
DUMP_TIMEOUT=60
RESTORE_TIMEOUT=90
EXIT_TIMEOUT=60

work=$(mktemp -d "${TMPDIR:-/tmp}/zdtm.$name.$mode.XXXXXX") || exit 1
# Some cases drop to a non-root uid and still have to see WORK/go and write WORK/ready.
chmod 1777 "$work"
exe="$work/$name"
cp "$bin" "$exe" || exit 1
netns_name=""
case_pid="" restore_pid="" tracer_pid=""

log() { echo "zdtm: $test_name: $*" >&2; }

# Every process running our private copy of the case binary (the original, a restored one, or a
# half-restored one). The copy's path is unique to this test run, so this never finds processes
# of other tests.
pids_running_exe() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] && echo "${p#/proc/}"
  done
}

proc_state() { sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$1/status" 2>/dev/null; }
proc_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null; }

# True while PID exists and is not a zombie (a zombie child still answers kill -0).
alive() { [ -e "/proc/$1" ] && [ "$(proc_state "$1")" != Z ]; }

# wait_exit PID SECONDS: waits for our child PID to end and sets st to its exit status, or to
# "timeout". (Not usable in $(...): a subshell cannot wait for this shell's children.)
wait_exit() {
  local pid=$1 limit=$2 i=0
  while alive "$pid"; do
    i=$((i + 1))
    if [ "$i" -gt $((limit * 20)) ]; then st=timeout; return; fi
    sleep 0.05
  done
  wait "$pid"; st=$?
}

cleanup() {
  local p
  [ -n "$tracer_pid" ] && kill -KILL "$tracer_pid" 2>/dev/null
  [ -n "$restore_pid" ] && alive "$restore_pid" && kill -KILL "$restore_pid" 2>/dev/null
  for p in $(pids_running_exe); do kill -KILL "$p" 2>/dev/null; done
  [ -n "$case_pid" ] && kill -KILL "$case_pid" 2>/dev/null
  wait 2>/dev/null
  [ -n "$netns_name" ] && ip netns del "$netns_name" 2>/dev/null
  if [ "${ZDTM_KEEP:-}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

dump_logs() {
  local f
  for f in out err dump.out dump.err restore.out restore.err tracer.log; do
    [ -s "$work/$f" ] || continue
    echo "----- $f -----" >&2
    head -c 8000 "$work/$f" >&2
  done
}

# xfail_reason: the reason this test is listed in expected_failures.txt, empty if it is not.
xfail_reason() {
  [ -f "$xfail_file" ] || return 0
  local wild="zdtm.$name.*" t r
  while read -r t r; do
    case "$t" in ''|'#'*) continue ;; esac
    if [ "$t" = "$test_name" ] || { [ "$mode" != plain ] && [ "$t" = "$wild" ]; }; then
      echo "${r:-no reason given}"
      return 0
    fi
  done < "$xfail_file"
}

# finish pass|fail MESSAGE
finish() {
  local verdict=$1 msg=$2 why
  why=$(xfail_reason)
  if [ "$verdict" = pass ]; then
    if [ -n "$why" ]; then
      echo "XPASS $test_name: it passes but expected_failures.txt says: $why" >&2
      echo "XPASS: remove '$test_name' from $xfail_file" >&2
      exit 1
    fi
    echo "PASS $test_name: $msg"
    exit 0
  fi
  dump_logs
  if [ -n "$why" ]; then
    echo "XFAIL $test_name: $msg (expected: $why)"
    exit 0
  fi
  echo "FAIL $test_name: $msg" >&2
  exit 1
}

# check_output EXPECTED_START_PID: the case's stdout must begin with its START/READY lines (proving
# the restored fd kept its offset instead of overwriting), contain no FAIL line and end with
# RESULT PASS.
check_output() {
  local out="$work/out" first second last
  first=$(sed -n 1p "$out")
  second=$(sed -n 2p "$out")
  last=$(tail -n 1 "$out")
  [ "$first" = "START $name pid $1" ] || finish fail "first output line is '$first', want 'START $name pid $1'"
  [ "$second" = READY ] || finish fail "second output line is '$second', want 'READY'"
  if grep -q '^FAIL' "$out"; then finish fail "case reported: $(grep -m3 '^FAIL' "$out" | tr '\n' ' ')"; fi
  case "$last" in "RESULT PASS $name "*) ;; *) finish fail "last output line is '$last'" ;; esac
  [ "$(grep -c '^START ' "$out")" = 1 ] || finish fail "more than one START line: the case ran from the beginning again"
}

# --- start the case ------------------------------------------------------------------------------
(cd "$work" && exec "$exe" "$work" </dev/null >"$work/out" 2>"$work/err") &
case_pid=$!
i=0
while [ ! -e "$work/ready" ]; do
  if ! alive "$case_pid"; then
    wait_exit "$case_pid" 1
    finish fail "case exited before ready (status $st)"
  fi
  i=$((i + 1))
  [ "$i" -le $((READY_TIMEOUT * 20)) ] || finish fail "no ready after ${READY_TIMEOUT}s"
  sleep 0.05
done

if [ "$mode" = plain ]; then
  touch "$work/go"
  wait_exit "$case_pid" "$EXIT_TIMEOUT"
  case_pid=""
  [ "$st" = 0 ] || finish fail "case exit status $st without any checkpoint"
  check_output "$(cat "$work/ready")"
  finish pass "case passes without checkpoint"
fi

orig_pid=$case_pid
if [ "$hook" = tracer ]; then
  [ -n "$tracer" ] || usage
  "$tracer" "$orig_pid" "$work/tracer.ready" >"$work/tracer.log" 2>&1 &
  tracer_pid=$!
  i=0
  until [ -e "$work/tracer.ready" ]; do
    alive "$tracer_pid" || finish fail "tracer exited early: $(cat "$work/tracer.log")"
    i=$((i + 1)); [ "$i" -le 200 ] || finish fail "tracer not ready after 10s"
    sleep 0.05
  done
fi

# --- checkpoint ----------------------------------------------------------------------------------
timeout -s KILL "$DUMP_TIMEOUT" "$osmo" checkpoint "$orig_pid" -o "$work/img" --kill \
  >"$work/dump.out" 2>"$work/dump.err"
dump_rc=$?

if [ "$kind" = refuse-dump ]; then
  [ "$dump_rc" -ne 0 ] || finish fail "checkpoint succeeded, but it must refuse ($reason)"
  [ "$dump_rc" -ne 137 ] || finish fail "checkpoint did not finish within ${DUMP_TIMEOUT}s"
  lines=$(grep -c . "$work/dump.err")
  [ "$lines" = 1 ] || finish fail "checkpoint refusal printed $lines lines on stderr, want exactly 1"
  msg=$(cat "$work/dump.err")
  prefix="osmo checkpoint: cannot checkpoint pid $orig_pid: "
  case "$msg" in "$prefix"*) ;; *) finish fail "refusal message '$msg' does not start with '$prefix'" ;; esac
  echo "${msg#"$prefix"}" | grep -Eiq -- "$reason" ||
    finish fail "refusal reason in '$msg' does not match /$reason/"
  alive "$orig_pid" || finish fail "the refused process is gone"
  st=$(proc_state "$orig_pid")
  case "$st" in T|t) finish fail "the refused process is left stopped (State $st)" ;; esac
  want_tracer=0
  [ -n "$tracer_pid" ] && want_tracer=$tracer_pid
  tp=$(proc_field "$orig_pid" TracerPid)
  [ "$tp" = "$want_tracer" ] || finish fail "after the refusal TracerPid is $tp, want $want_tracer"
  [ -e "$work/img" ] && [ -s "$work/img" ] && log "note: a refused checkpoint left a non-empty image file"
  touch "$work/go"
  wait_exit "$orig_pid" "$EXIT_TIMEOUT"
  case_pid=""
  [ "$st" = 0 ] || finish fail "after the refusal the case exited with status $st"
  check_output "$orig_pid"
  finish pass "refused ('$msg') and the process completed normally"
fi

[ "$dump_rc" = 0 ] || finish fail "checkpoint exit status $dump_rc: $(head -c 400 "$work/dump.err")"
wait_exit "$orig_pid" 10
case_pid=""
[ "$st" = 137 ] || finish fail "after checkpoint --kill the original ended with status '$st', want 137 (SIGKILL)"
[ -s "$work/img" ] || finish fail "checkpoint exited 0 but wrote no image"

# --- between checkpoint and restore --------------------------------------------------------------
if [ "$hook" = change-file ]; then
  # The case keeps WORK/data open; change its content and size behind the image's back.
  printf 'changed after the checkpoint\n' >>"$work/data"
fi

# --- restore -------------------------------------------------------------------------------------
restore_args=(restore "$work/img")
if [ "$mode" = netns ]; then
  netns_name="zdtm-$$-$RANDOM"
  ip netns add "$netns_name" || finish fail "ip netns add $netns_name failed"
  restore_args+=(--netns "/run/netns/$netns_name")
fi
timeout -s KILL "$RESTORE_TIMEOUT" "$osmo" "${restore_args[@]}" \
  >"$work/restore.out" 2>"$work/restore.err" &
restore_pid=$!

if [ "$kind" = refuse-restore ]; then
  wait_exit "$restore_pid" "$RESTORE_TIMEOUT"
  restore_pid=""
  [ "$st" != 0 ] || finish fail "restore succeeded, but it must refuse ($reason)"
  [ "$st" != timeout ] && [ "$st" != 137 ] || finish fail "restore did not finish"
  msg=$(grep -m1 . "$work/restore.err")
  case "$msg" in "osmo restore: "*) ;; *) finish fail "restore error '$msg' does not start with 'osmo restore: '" ;; esac
  echo "$msg" | grep -Eiq -- "$reason" || finish fail "restore error '$msg' does not match /$reason/"
  sleep 0.5
  left=$(pids_running_exe)
  [ -z "$left" ] || finish fail "half-restored process(es) left running: $left"
  finish pass "restore refused ('$msg') and left nothing behind"
fi

# Find the restored process: it runs our copy of the binary and, in its own PID namespace, has the
# pid the original had (the last NSpid field).
restored=""
i=0
while [ -z "$restored" ]; do
  for p in $(pids_running_exe); do
    nspid=$(proc_field "$p" NSpid)
    [ "${nspid##*[[:space:]]}" = "$orig_pid" ] && restored=$p
  done
  [ -n "$restored" ] && break
  if ! alive "$restore_pid"; then
    wait_exit "$restore_pid" 1; restore_pid=""
    finish fail "osmo restore exited (status $st) and no restored process was seen: $(head -c 400 "$work/restore.err")"
  fi
  i=$((i + 1))
  [ "$i" -le 600 ] || finish fail "no restored process (exe $exe, pid $orig_pid in its namespace) after 30s"
  sleep 0.05
done

# The contract: a fresh PID, mount and time namespace; the network namespace we asked for.
ns_of() { stat -L -c %i "/proc/$1/ns/$2" 2>/dev/null; }
for ns in pid mnt time; do
  [ "$(ns_of "$restored" "$ns")" != "$(ns_of $$ "$ns")" ] ||
    finish fail "restored pid $restored shares our $ns namespace"
done
if [ "$mode" = netns ]; then
  want_net=$(stat -L -c %i "/run/netns/$netns_name")
else
  want_net=$(ns_of $$ net)
fi
[ "$(ns_of "$restored" net)" = "$want_net" ] || finish fail "restored pid $restored is not in the expected network namespace"

# Let the restored process run a little on its own (timers, restarted syscalls) before go.
sleep 0.3
touch "$work/go"
wait_exit "$restore_pid" "$EXIT_TIMEOUT"
[ "$st" != timeout ] || finish fail "restored process did not finish within ${EXIT_TIMEOUT}s of go"
restore_pid=""
[ "$st" = 0 ] || finish fail "osmo restore exited with status $st (the restored case's status)"
check_output "$orig_pid"
finish pass "checkpointed, restored (pid $orig_pid, host pid $restored) and verified"
