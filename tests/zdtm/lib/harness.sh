# SPDX-License-Identifier: GPL-2.0-or-later
# harness.sh: shell helpers shared by run_case.sh and run_fault.sh (sourced, not run). The caller
# sets: here (tests/zdtm), name (case name), mode, bin (case binary), test_name, xfail_file; then
# calls zh_setup. Afterwards: work (private work dir), exe (private copy of the case binary),
# case_pid / restore_pid / tracer_pid / netns_name (cleaned up at exit), st (see wait_exit).

# Bounds (seconds). Every wait below is bounded; ctest's TIMEOUT is the outer bound.
READY_TIMEOUT=20
DUMP_TIMEOUT=60
RESTORE_TIMEOUT=90
EXIT_TIMEOUT=60

work="" exe="" netns_name="" case_pid="" restore_pid="" tracer_pid="" st=""

# zh_setup: a private work dir and a private copy of the case binary (see pids_running_exe).
zh_setup() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/zdtm.$name.$mode.XXXXXX") || exit 1
  trap cleanup EXIT  # before anything can fail, so the work dir never outlives the test
  trap 'exit 1' INT TERM HUP
  # Some cases drop to a non-root uid and still have to see WORK/go and write WORK/ready.
  chmod 1777 "$work"
  exe="$work/$name"
  cp "$bin" "$exe" || { log "cannot copy the case binary $bin"; exit 1; }
}

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
  { wait "$pid"; } 2>/dev/null  # quiet: bash would report a job killed by a signal
  st=$?
}

# close_inherited_fds: in a subshell about to exec a test program, closes every fd above 2, so
# the program starts with exactly stdin, stdout and stderr whatever ctest or a terminal left open.
close_inherited_fds() {
  local fd
  for fd in $(ls "/proc/$BASHPID/fd"); do
    [ "$fd" -gt 2 ] && eval "exec $fd>&-"
  done
  return 0
}

cleanup() {
  local p
  [ -n "$tracer_pid" ] && kill -KILL "$tracer_pid" 2>/dev/null
  [ -n "$restore_pid" ] && alive "$restore_pid" && kill -KILL "$restore_pid" 2>/dev/null
  for p in $(pids_running_exe); do kill -KILL "$p" 2>/dev/null; done
  [ -n "$case_pid" ] && { kill -KILL "$case_pid"; wait "$case_pid"; } 2>/dev/null
  [ -n "$out_cat_pid" ] && kill -KILL "$out_cat_pid" 2>/dev/null
  { wait; } 2>/dev/null
  [ -n "$netns_name" ] && ip netns del "$netns_name" 2>/dev/null
  [ -n "$work" ] || return 0
  if [ "${ZDTM_KEEP:-}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
dump_logs() {
  local f
  for f in out err dump.out dump.err show.err restore.fault.err restore.out restore.err tracer.log; do
    [ -s "$work/$f" ] || continue
    echo "----- $f -----" >&2
    head -c 8000 "$work/$f" >&2
  done
}

# xfail_reason: the reason this test is listed in expected_failures.txt, empty if it is not.
xfail_reason() {
  [ -f "$xfail_file" ] || return 0
  local wild="zdtm.$name.*" t r engine_mode
  while read -r t r; do
    case "$t" in ''|'#'*) continue ;; esac
    engine_mode=false
    case "$mode" in samens|netns|leave) engine_mode=true ;; esac
    if [ "$t" = "$test_name" ] || { $engine_mode && [ "$t" = "$wild" ]; }; then
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
    case "$why" in
      flaky:*)
        echo "XPASS $test_name: passed this time; listed as flaky (${why#flaky:}), not failing"
        exit 0 ;;
    esac
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


# zh_start_case: starts the case in the background and waits, bounded, for WORK/ready. Sets
# case_pid. stdio=files (default): stdin /dev/null, stdout WORK/out, stderr WORK/err, all regular
# files. stdio=pipes: stdin is a pipe carrying "before\nafter\n", stdout a pipe into `cat >WORK/out`
# (out_cat_pid), for cases whose stdio the engine must replace with stand-ins at restore.
out_cat_pid=""
zh_start_case() {
  local i=0 in_fd out_fd
  if [ "${stdio:-files}" = pipes ]; then
    exec {out_fd}> >(exec cat >"$work/out")
    out_cat_pid=$!
    exec {in_fd}< <(printf 'before\nafter\n')
    (exec <&"$in_fd" >&"$out_fd" 2>"$work/err"; cd "$work" && close_inherited_fds && exec "$exe" "$work") &
    case_pid=$!
    exec {in_fd}<&- {out_fd}>&-
  else
    (exec </dev/null >"$work/out" 2>"$work/err"; cd "$work" && close_inherited_fds && exec "$exe" "$work") &
    case_pid=$!
  fi
  while [ ! -e "$work/ready" ]; do
    if ! alive "$case_pid"; then
      wait_exit "$case_pid" 1
      finish fail "case exited before ready (status $st)"
    fi
    i=$((i + 1))
    [ "$i" -le $((READY_TIMEOUT * 20)) ] || finish fail "no ready after ${READY_TIMEOUT}s"
    sleep 0.05
  done
}

# zh_wait_out_cat: with stdio=pipes, waits (bounded) until the cat copying the case's stdout has
# seen EOF and written everything, so WORK/out is complete.
zh_wait_out_cat() {
  [ -n "$out_cat_pid" ] || return 0
  local i=0
  while [ -e "/proc/$out_cat_pid" ]; do
    i=$((i + 1))
    [ "$i" -le 200 ] || finish fail "the stdout pipe was not closed within 10s (a stray writer?)"
    sleep 0.05
  done
  out_cat_pid=""
}

# zh_check_untouched PID WANT_TRACER: after a refused or failed checkpoint the process must still
# run, not be left stopped, and be traced by nobody but WANT_TRACER (0: nobody).
zh_check_untouched() {
  local pid=$1 want=$2 s tp
  alive "$pid" || finish fail "the process is gone"
  s=$(proc_state "$pid")
  case "$s" in T|t) finish fail "the process is left stopped (State $s)" ;; esac
  tp=$(proc_field "$pid" TracerPid)
  [ "$tp" = "$want" ] || finish fail "TracerPid is $tp, want $want"
}

# zh_go_and_check_exit PID: creates go and waits for our child PID; it must exit 0 with good output
# (START line naming START_PID, default PID).
zh_go_and_check_exit() {
  local pid=$1 start_pid=${2:-$1}
  touch "$work/go"
  wait_exit "$pid" "$EXIT_TIMEOUT"
  [ "$st" = 0 ] || finish fail "the case exited with status $st"
  zh_wait_out_cat
  check_output "$start_pid"
}

# zh_find_restored ORIG_PID: waits (bounded) for the restored process: it runs our copy of the
# binary and, in its own PID namespace, has ORIG_PID (last NSpid field). Sets restored.
zh_find_restored() {
  local orig=$1 i=0 p nspid
  restored=""
  while :; do
    for p in $(pids_running_exe); do
      nspid=$(proc_field "$p" NSpid)
      [ "${nspid##*[[:space:]]}" = "$orig" ] && restored=$p
    done
    [ -n "$restored" ] && return 0
    if ! alive "$restore_pid"; then
      wait_exit "$restore_pid" 1; restore_pid=""
      finish fail "osmo restore exited (status $st) and no restored process was seen: $(head -c 400 "$work/restore.err")"
    fi
    i=$((i + 1))
    [ "$i" -le 600 ] || finish fail "no restored process (exe $exe, pid $orig in its namespace) after 30s"
    sleep 0.05
  done
}

# zh_no_leftovers: after a failed restore nothing may run our binary (no half-restored process).
zh_no_leftovers() {
  local left
  sleep 0.5
  left=$(pids_running_exe)
  [ -z "$left" ] || finish fail "half-restored process(es) left running: $left"
}
