#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
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
#   (--tree: the case is a process tree, checkpointed with `osmo checkpoint --tree`.)
#   leave   checkpoint without --kill (the default: resume after the dump); the original must go
#           on untouched (running, untraced, its state intact when told go) and the image must
#           be readable by `osmo image show`. Restore kind only.
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
# Hooks: tracer (zdtm_tracer attached before the checkpoint), change-file (WORK/data appended to
# between checkpoint and restore), stdio-pipes (stdin and stdout are pipes: the original's carry
# "before\n" in and its output out; at restore `osmo restore` gets a new pair, stdin carrying
# "after\n", stdout appending to the same file, which the engine must install as stand-ins).
#
# Expected failures: tests/zdtm/expected_failures.txt lists test names (zdtm.<case>.<mode>, or
# zdtm.<case>.* for both engine modes) with a reason. A listed test that fails is reported XFAIL and
# exits 0; a listed test that passes is reported XPASS and exits 1, so the list stays true.
#
# Exit: 0 pass (or XFAIL), 1 fail (or XPASS), 77 skipped (not root, outside CI).
set -u
# Every case runs in a session led by this harness: the same at a terminal as under CI, where the
# suite's own session leader lives outside its pid namespace and getsid() there says 0.
[ -n "${OSMO_ZDTM_SESSION:-}" ] || OSMO_ZDTM_SESSION=1 exec setsid -w "$0" "$@"

usage() {
  echo "usage: $0 --osmo PATH --bin PATH --name NAME --mode plain|samens|netns" \
       "[--kind restore|refuse-dump|refuse-restore] [--reason ERE] [--hook tracer|change-file|stdio-pipes]" \
       "[--tracer PATH] [--xfail-file PATH]" >&2
  exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
osmo="" bin="" name="" mode="" kind=restore reason="" hook="" tracer="" tree=()
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
    --tree) tree=(--tree); shift ;;
    --xfail-file) xfail_file=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$bin" ] && [ -n "$name" ] && [ -n "$mode" ] || usage
case "$mode" in plain|samens|netns|leave) ;; *) usage ;; esac
case "$kind" in restore|refuse-dump|refuse-restore) ;; *) usage ;; esac
[ "$mode" = plain ] || [ -n "$osmo" ] || usage

test_name="zdtm.$name.$mode"
# shellcheck source=../lib/skip.sh
. "$here/../lib/skip.sh"
# shellcheck source=lib/harness.sh
. "$here/lib/harness.sh"
osmo_require_root "$test_name (checkpoint/restore, namespaces, credentials)"
zh_setup
[ "$hook" = stdio-pipes ] && stdio=pipes

# --- start the case ------------------------------------------------------------------------------
zh_start_case

if [ "$mode" = plain ]; then
  zh_go_and_check_exit "$case_pid"
  case_pid=""
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
if [ "$mode" = leave ]; then
  timeout -s KILL "$DUMP_TIMEOUT" "$osmo" checkpoint "${tree[@]}" "$orig_pid" -o "$work/img" \
    >"$work/dump.out" 2>"$work/dump.err"
  rc=$?
  [ "$rc" = 0 ] || finish fail "checkpoint (leave running) exit status $rc: $(head -c 400 "$work/dump.err")"
  zh_check_untouched "$orig_pid" 0
  timeout -s KILL "$DUMP_TIMEOUT" "$osmo" image show "$work/img" >"$work/show.out" 2>"$work/show.err" ||
    finish fail "osmo image show cannot read the image: $(head -c 300 "$work/show.err")"
  zh_go_and_check_exit "$orig_pid"
  case_pid=""
  finish pass "checkpointed, left running, and the original completed with its state intact"
fi
timeout -s KILL "$DUMP_TIMEOUT" "$osmo" checkpoint "${tree[@]}" "$orig_pid" -o "$work/img" --kill \
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
  zh_check_untouched "$orig_pid" "${tracer_pid:-0}"
  [ -e "$work/img" ] && [ -s "$work/img" ] && log "note: a refused checkpoint left a non-empty image file"
  zh_go_and_check_exit "$orig_pid"
  case_pid=""
  finish pass "refused ('$msg') and the process completed normally"
fi

[ "$dump_rc" = 0 ] || finish fail "checkpoint exit status $dump_rc: $(head -c 400 "$work/dump.err")"
wait_exit "$orig_pid" 10
case_pid=""
[ "$st" = 137 ] || finish fail "after checkpoint --kill the original ended with status '$st', want 137 (SIGKILL)"
[ -s "$work/img" ] || finish fail "checkpoint exited 0 but wrote no image"
zh_wait_out_cat

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
if [ "$hook" = stdio-pipes ]; then
  # The restoring command's own stdin and stdout become the restored process's stand-ins.
  exec {r_out}> >(exec cat >>"$work/out")
  out_cat_pid=$!
  exec {r_in}< <(printf 'after\n')
  (exec <&"$r_in" >&"$r_out" 2>"$work/restore.err"; close_inherited_fds
   exec timeout -s KILL "$RESTORE_TIMEOUT" "$osmo" "${restore_args[@]}") &
  restore_pid=$!
  exec {r_in}<&- {r_out}>&-
else
  timeout -s KILL "$RESTORE_TIMEOUT" "$osmo" "${restore_args[@]}" \
    >"$work/restore.out" 2>"$work/restore.err" &
  restore_pid=$!
fi

if [ "$kind" = refuse-restore ]; then
  wait_exit "$restore_pid" "$RESTORE_TIMEOUT"
  restore_pid=""
  [ "$st" != 0 ] || finish fail "restore succeeded, but it must refuse ($reason)"
  [ "$st" != timeout ] && [ "$st" != 137 ] || finish fail "restore did not finish"
  msg=$(grep -m1 . "$work/restore.err")
  case "$msg" in "osmo restore: "*) ;; *) finish fail "restore error '$msg' does not start with 'osmo restore: '" ;; esac
  echo "$msg" | grep -Eiq -- "$reason" || finish fail "restore error '$msg' does not match /$reason/"
  zh_no_leftovers
  finish pass "restore refused ('$msg') and left nothing behind"
fi

zh_find_restored "$orig_pid"

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
zh_wait_out_cat
check_output "$orig_pid"
finish pass "checkpointed, restored (pid $orig_pid, host pid $restored) and verified"
