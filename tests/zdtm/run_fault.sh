#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run_fault.sh: one fault-injection test of the engine. OSMO_FAULT=<point> makes the engine fail
# at a named point (the list: `osmo checkpoint --list-faults`, documented in docs/engine.md).
#   dump.*     checkpoint --kill of the case must fail, and the original must be left as it
#              was: running, not stopped, not traced, and its state intact (the case verifies
#              memory, brk, signal state, fds, the maps layout) when told go.
#   restore.*  a good checkpoint is taken, then restore with the fault must fail with an
#              "osmo restore: " line and leave no half-restored process; the image must still
#              be good: a second restore without the fault succeeds and the case passes.
# Usage: run_fault.sh --osmo PATH --bin CASE_BINARY --name CASE --point NAME [--xfail-file PATH]
set -u
# Every case runs in a session led by this harness: the same at a terminal as under CI, where the
# suite's own session leader lives outside its pid namespace and getsid() there says 0.
[ -n "${OSMO_ZDTM_SESSION:-}" ] || OSMO_ZDTM_SESSION=1 exec setsid -w "$0" "$@"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
osmo="" bin="" name="" point=""
xfail_file="$here/expected_failures.txt"
while [ $# -gt 0 ]; do
  case "$1" in
    --osmo) osmo=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --point) point=$2; shift 2 ;;
    --xfail-file) xfail_file=$2; shift 2 ;;
    *) echo "usage: $0 --osmo PATH --bin PATH --name CASE --point FAULT" >&2; exit 2 ;;
  esac
done
[ -n "$osmo" ] && [ -n "$bin" ] && [ -n "$name" ] && [ -n "$point" ] || { echo "missing arguments" >&2; exit 2; }
mode=fault
test_name="zdtm.fault.$point"
# shellcheck source=../lib/skip.sh
. "$here/../lib/skip.sh"
# shellcheck source=lib/harness.sh
. "$here/lib/harness.sh"
osmo_require_root "$test_name (checkpoint/restore)"
zh_setup

"$osmo" checkpoint --list-faults 2>/dev/null | awk '{print $1}' | grep -qx -- "$point" ||
  finish fail "'osmo checkpoint --list-faults' does not list $point"

zh_start_case
orig_pid=$case_pid

case "$point" in
  dump.*)
    OSMO_FAULT=$point timeout -s KILL "$DUMP_TIMEOUT" "$osmo" checkpoint "$orig_pid" -o "$work/img" --kill \
      >"$work/dump.out" 2>"$work/dump.err"
    rc=$?
    [ "$rc" -ne 0 ] || finish fail "checkpoint succeeded although OSMO_FAULT=$point"
    [ "$rc" -ne 137 ] || finish fail "checkpoint hung with OSMO_FAULT=$point"
    grep -q "^osmo checkpoint: " "$work/dump.err" || finish fail "no 'osmo checkpoint: ' error line"
    grep -q -- "$point" "$work/dump.err" || finish fail "the error does not name the fault point: $(head -c 300 "$work/dump.err")"
    zh_check_untouched "$orig_pid" 0
    [ ! -s "$work/img" ] || finish fail "a failed checkpoint left a non-empty image $work/img"
    zh_go_and_check_exit "$orig_pid"
    case_pid=""
    finish pass "checkpoint failed at $point and the process was left untouched"
    ;;
  restore.*)
    timeout -s KILL "$DUMP_TIMEOUT" "$osmo" checkpoint "$orig_pid" -o "$work/img" --kill \
      >"$work/dump.out" 2>"$work/dump.err" || finish fail "checkpoint failed: $(head -c 300 "$work/dump.err")"
    wait_exit "$orig_pid" 10
    case_pid=""
    [ "$st" = 137 ] || finish fail "after checkpoint --kill the original ended with status '$st'"
    OSMO_FAULT=$point timeout -s KILL "$RESTORE_TIMEOUT" "$osmo" restore "$work/img" \
      >"$work/restore.out" 2>"$work/restore.err" &
    restore_pid=$!
    wait_exit "$restore_pid" "$RESTORE_TIMEOUT"
    restore_pid=""
    [ "$st" != 0 ] || finish fail "restore succeeded although OSMO_FAULT=$point"
    [ "$st" != timeout ] && [ "$st" != 137 ] || finish fail "restore hung with OSMO_FAULT=$point"
    grep -q "^osmo restore: " "$work/restore.err" || finish fail "no 'osmo restore: ' error line"
    grep -q -- "$point" "$work/restore.err" || finish fail "the error does not name the fault point: $(head -c 300 "$work/restore.err")"
    zh_no_leftovers
    mv "$work/restore.err" "$work/restore.fault.err"
    timeout -s KILL "$RESTORE_TIMEOUT" "$osmo" restore "$work/img" >"$work/restore.out" 2>"$work/restore.err" &
    restore_pid=$!
    zh_find_restored "$orig_pid"
    sleep 0.3
    touch "$work/go"
    wait_exit "$restore_pid" "$EXIT_TIMEOUT"
    restore_pid=""
    [ "$st" = 0 ] || finish fail "the second restore (no fault) exited with status $st"
    check_output "$orig_pid"
    finish pass "restore failed at $point, left nothing behind, and the image restored fine afterwards"
    ;;
  *) finish fail "fault point '$point' is neither dump.* nor restore.*" ;;
esac
