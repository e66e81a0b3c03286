# SPDX-License-Identifier: GPL-2.0-or-later
# real_lib.sh: shared by the real-program checkpoint tests (sourced). A real program runs once
# undisturbed (the reference), then again, is checkpointed with --kill in the middle of its work
# (judged by its own progress, not by time), restored, and must produce byte for byte the same
# output and the same exit status as the reference. Its stdin and stdout are regular files.
#
# The caller sets: name (test name suffix), bin (the program); then:
#   real_setup                      work dir, private copy of the program, cleanup at exit
#   real_run_reference ARGS...      runs "$exe ARGS" <"$work/in" >"$work/ref.out"
#   real_run_checkpointed PROGRESS ARGS...
#                                   the same, checkpointed once PROGRESS PID succeeds
#                                   (with `osmo checkpoint $REAL_CHECKPOINT_ARGS`, e.g. --tree)
# Progress helpers: progress_read_bytes N, progress_cpu_ticks N, progress_out_lines N.
set -u
real_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
here="$real_here/../zdtm"
xfail_file="$here/expected_failures.txt"
osmo=${OSMO:-}
mode=real
test_name="ckpt_real.$name"
# shellcheck source=../lib/skip.sh
. "$real_here/../lib/skip.sh"
# shellcheck source=../zdtm/lib/harness.sh
. "$here/lib/harness.sh"
PROGRESS_TIMEOUT=240
REAL_EXIT_TIMEOUT=240

real_setup() {
  [ -n "$osmo" ] || { echo "usage: OSMO=/path/to/osmo $0" >&2; exit 2; }
  osmo_require_root "$test_name (checkpoint/restore of a real program)"
  command -v "$bin" >/dev/null || finish fail "$bin is not installed (see OSMO_DEBS in scripts/lib.sh)"
  bin=$(command -v "$bin")
  # The copy keeps the program's name: some (xz) behave differently under another argv[0].
  local prog_name
  prog_name=$(basename "$bin")
  name_saved=$name
  name=$prog_name
  zh_setup
  name=$name_saved
}

# Sets ticks to the CPU time (clock ticks, 1/100 s) this shell's reaped children used so far,
# from `times`. It must run in this shell, not in $(...) or a pipeline: a subshell has no children.
children_ticks() {
  times >"$work/times"
  ticks=$(awk 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
    printf "%d\n", t * 100 }' "$work/times")
}

# Sets ref_status (exit status) and ref_ticks (CPU ticks the reference used).
ref_status="" ref_ticks=""
real_run_reference() {
  local before ticks
  children_ticks
  before=$ticks
  (cd "$work" && close_inherited_fds && exec "$exe" "$@" <"$work/in" >"$work/ref.out" 2>"$work/ref.err") &
  local pid=$!
  wait_exit "$pid" "$REAL_EXIT_TIMEOUT"
  [ "$st" != timeout ] || { kill -KILL "$pid"; finish fail "the reference run did not finish in ${REAL_EXIT_TIMEOUT}s"; }
  ref_status=$st
  children_ticks
  ref_ticks=$(( ticks - before ))
}

# Progress predicates, called with the pid; true once the program is far enough into its work.
progress_read_bytes() { # N: it has read at least N bytes (rchar in /proc/PID/io)
  local r
  r=$(sed -n 's/^rchar: //p' "/proc/$2/io" 2>/dev/null)
  [ -n "$r" ] && [ "$r" -ge "$1" ]
}
progress_cpu_ticks() { # N: it has used at least N clock ticks of user+system time
  local f
  f=$(sed 's/.*) //' "/proc/$2/stat" 2>/dev/null) || return 1
  set -- "$1" $f
  [ $(( ${13} + ${14} )) -ge "$1" ]
}
progress_out_lines() { # N: its stdout has at least N lines
  [ "$(wc -l <"$work/run.out")" -ge "$1" ]
}

# real_run_checkpointed "PROGRESS ARG" ARGS...: PROGRESS is e.g. "progress_read_bytes 1000000".
real_run_checkpointed() {
  local progress=$1 i=0 orig
  shift
  (cd "$work" && close_inherited_fds && exec "$exe" "$@" <"$work/in" >"$work/run.out" 2>"$work/run.err") &
  case_pid=$!
  orig=$case_pid
  until $progress "$orig"; do
    alive "$orig" || finish fail "the program finished before reaching the checkpoint point ($progress); make its work bigger"
    i=$((i + 1))
    [ "$i" -le $((PROGRESS_TIMEOUT * 20)) ] || finish fail "no progress ($progress) within ${PROGRESS_TIMEOUT}s"
    sleep 0.05
  done
  # shellcheck disable=SC2086
  timeout -s KILL "$DUMP_TIMEOUT" "$osmo" checkpoint ${REAL_CHECKPOINT_ARGS:-} "$orig" -o "$work/img" --kill \
    >"$work/dump.out" 2>"$work/dump.err"
  local rc=$?
  [ "$rc" = 0 ] || finish fail "checkpoint exit status $rc: $(head -c 400 "$work/dump.err")"
  wait_exit "$orig" 10
  case_pid=""
  [ "$st" = 137 ] || finish fail "after checkpoint --kill the original ended with status '$st', want 137"
  timeout -s KILL "$REAL_EXIT_TIMEOUT" "$osmo" restore "$work/img" >"$work/restore.out" 2>"$work/restore.err" &
  restore_pid=$!
  wait_exit "$restore_pid" "$REAL_EXIT_TIMEOUT"
  restore_pid=""
  [ "$st" = "$ref_status" ] || finish fail "restored run exit status $st, reference $ref_status ($(head -c 300 "$work/restore.err"))"
  cmp -s "$work/ref.out" "$work/run.out" ||
    finish fail "output differs from the reference: $(cmp "$work/ref.out" "$work/run.out" 2>&1 | head -1) (sizes $(stat -c %s "$work/ref.out") vs $(stat -c %s "$work/run.out"))"
  finish pass "checkpointed mid-run ($progress), restored, output identical ($(stat -c %s "$work/ref.out") bytes), exit status $st"
}
