#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/migrate: how fast `osmo migrate` moves a running job between two testbed nodes, printed
# next to a plain TCP copy of the same bytes between the same two nodes (issue 9, "How it is
# judged"). One run prints one table; never a pass/fail on time, the targets are shown beside.
#
# How to measure (root; the testbed is one per machine):
#   cmake --build build --target osmo osmo-migrate-bench
#   OSMO_BUILD=$PWD/build bench/migrate/run.sh   (takes the testbed lock itself, waiting
#   OSMO_TESTBED_LOCK_WAIT seconds, 300 by default; never wrap it in another flock).
#   OSMO_TESTBED_INSTANCE=NAME runs it on that testbed instance (its own namespaces, subnet and
#   lock, as tests/cluster/testbed.py names them), beside other instances.
#   (scripts/bench.sh migrate builds and runs it too). About 5-10 minutes with all methods.
# Options:
#   --sizes "64M 1G 4G"             job sizes (binary suffixes)
#   --methods "stop precopy postcopy"
#   --dirty-size 1G --dirty 10      the second pass: a job of that size dirtying MiB/s (0: none)
#   --settle S                      seconds a job runs on n2 before it is moved (default 3)
#   --keep                          keep the outputs (job, migrate, baseline) and print their folder
#   run.sh --self-test              checks the parsing and the table on sample lines (no root)
#
# What it does: brings up a 3-node testbed without CPU quota (speed is measured here, not
# fairness), then for each size:
#   baseline   osmo-migrate-bench send on n2 -> recv on n3, best of 3 copies, timed by the
#              receiver from connect to last byte: into a buffer faulted in beforehand (the
#              table's "copy ms": network and memory bandwidth only, the strictest floor) and,
#              listed apart, into freshly mapped memory (what a restore must also allocate).
#   per method a fresh job: from n1, `osmo run -v --node n2 osmo-migrate-bench job SIZE DIRTY`
#              (home n1, output to a file); wait for "ready"; let it run --settle s; from n1,
#              `osmo migrate --json ID n3 --method M`; then `osmo ps --json` must show it on n3,
#              the job must keep printing, and `osmo kill -USR1` makes it check every page of its
#              memory; then `osmo kill ID`. A method that fails prints "not available" with the
#              one-line error in the notes, and the job must still be where it was, intact.
# then the second pass (1 GiB dirtying 10 MiB/s, every method).
#
# Reading the table: "freeze ms" and "total ms" are what osmo migrate reports; "copy ms" is the
# baseline of that size; "job stall ms" is the longest time the job itself was held off the CPU
# against its will around the migration (its own measurement, on stderr: an independent check of
# the freeze; scheduler delays of a busy machine show up there too, "-" = none over 10 ms);
# "job after" is the node osmo ps shows afterwards and the job's full memory check (intact,
# corrupt, or none if it did not answer). Targets: stop-and-copy total <= 1.5x copy; pre-copy and
# post-copy freeze < 30 ms for 1 GiB dirtying 10 MiB/s. The machine is shared: the load average
# is printed at start and end; rerun when it was high.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS="$HERE/results.py"
if [ "${1:-}" = "--self-test" ]; then exec python3 "$RESULTS" self-test; fi

OSMO_BUILD=${OSMO_BUILD:-$HERE/../../build}
OSMO="$OSMO_BUILD/osmo"
BENCH="$OSMO_BUILD/bench/migrate/osmo-migrate-bench"
PORT=47913                   # inside n3's namespace: nothing else listens there
SRC=n2 DST=n3 HOME_NODE=n1
DST_ADDR=""  # n3's address, from `osmo testbed list` once it is up (each instance has its subnet)

sizes="64M 1G 4G" methods="stop precopy postcopy" dirty_size=1G dirty=10 settle=3 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --dirty-size) dirty_size=$2; shift 2 ;;
    --dirty) dirty=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "bench/migrate: unknown argument '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done

die() { echo "bench/migrate: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (testbed namespaces)"
[ -x "$OSMO" ] || die "no osmo at $OSMO (set OSMO_BUILD to your build directory)"
[ -x "$BENCH" ] || die "no osmo-migrate-bench at $BENCH (cmake --build \$OSMO_BUILD --target osmo-migrate-bench)"
command -v python3 >/dev/null || die "needs python3 (results.py parses and prints the table)"
[[ "$dirty" =~ ^[0-9]+$ ]] || die "--dirty must be a whole number of MiB/s, got '$dirty'"
[[ "$settle" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--settle must be a number of seconds, got '$settle'"

# "64M" -> bytes (binary suffixes, as osmo-migrate-bench reads them).
to_bytes() {
  local n=${1%[KkMmGg]} s=${1##*[0-9]}
  [[ "$n" =~ ^[0-9]+$ ]] || die "bad size '$1' (use e.g. 64M, 1G, 4G)"
  case "$s" in
    "") echo "$n" ;;
    K|k) echo $((n << 10)) ;;
    M|m) echo $((n << 20)) ;;
    G|g) echo $((n << 30)) ;;
    *) die "bad size '$1' (use e.g. 64M, 1G, 4G)" ;;
  esac
}
for s in $sizes $dirty_size; do to_bytes "$s" >/dev/null; done

tmp=$(mktemp -d /tmp/osmo-bench-migrate.XXXXXX)
rows="$tmp/rows.tsv"
: >"$rows"
bg_pids=()

# The machine-wide testbed lock of tests/cluster/testbed.py, as bench/run/run.sh takes it: never
# tear down a testbed that a test (or another benchmark) is using.
exec 9>"/run/osmo-testbed-tests${OSMO_TESTBED_INSTANCE:+-$OSMO_TESTBED_INSTANCE}.lock"
flock -w "${OSMO_TESTBED_LOCK_WAIT:-300}" 9 || die "the testbed stayed busy for ${OSMO_TESTBED_LOCK_WAIT:-300} s"
cleanup() {
  local p
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done  # only what we started
  "$OSMO" testbed down >/dev/null 2>&1 || true
  if [ "$keep" = 1 ]; then echo "outputs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
# Everything started in a node gets no copy of the lock (fd 9): the daemons outlive us.
tb() { "$OSMO" testbed exec "$@" 9>&-; }

echo "bench/migrate: $("$OSMO" --version 2>/dev/null | head -1), $(nproc) CPUs, $(date -u '+%F %T') UTC"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$OSMO" testbed down >/dev/null 2>&1 || true
"$OSMO" testbed up -n 3 >/dev/null 9>&- || die "osmo testbed up -n 3 failed"
sleep 2  # the nodes know each other
DST_ADDR=$("$OSMO" testbed list --json 9>&- | python3 -c \
  'import json, sys; print(next(n["address"] for n in json.load(sys.stdin) if n["node"] == sys.argv[1]))' "$DST") ||
  die "cannot read the address of $DST from osmo testbed list"

have_migrate=1
if ! "$OSMO" --help 2>/dev/null | grep -qE '^  migrate +'; then
  have_migrate=0
  echo "osmo migrate is not in this build ($OSMO): migration figures will be missing"
fi

mem_available() { awk '/^MemAvailable:/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo; }

# Baseline of one size: sets copy_ms[bytes] (prefaulted, connect to last byte) and prints a line.
declare -A copy_ms=()
baseline() {
  local size=$1 bytes=$2 mem flag best line=""
  for mem in prefaulted fresh; do
    flag=""; [ "$mem" = fresh ] && flag=--fresh
    # A simple command in the background (not tb): $! is then the process itself, which
    # `testbed exec` turns into the receiver, so cleanup can kill it by its pid.
    "$OSMO" testbed exec "$DST" -- "$BENCH" recv "$PORT" "$size" --count 3 $flag \
      >"$tmp/recv-$size-$mem" 2>&1 9>&- &
    local rp=$!
    bg_pids+=("$rp")
    if ! timeout 900 "$OSMO" testbed exec "$SRC" -- "$BENCH" send "$DST_ADDR" "$PORT" "$size" --count 3 \
        >"$tmp/send-$size-$mem" 2>&1 9>&-; then
      echo "  $size $mem: the copy failed: $(tail -1 "$tmp/send-$size-$mem")"
    fi
    wait "$rp" || true
    if ! best=$(python3 "$RESULTS" recv-best "$tmp/recv-$size-$mem" 2>/dev/null); then
      echo "  $size $mem: no figure: $(tail -1 "$tmp/recv-$size-$mem")"
      continue
    fi
    local c f g
    IFS=$'\t' read -r c f g <<<"$best"
    [ "$mem" = prefaulted ] && copy_ms[$bytes]=$c
    line+=$(printf '  %-5s into %-10s memory: connect to last byte %8.1f ms, first to last %8.1f ms, %5.2f GB/s\n' \
      "$size" "$mem" "$c" "$f" "$g")$'\n'
  done
  printf '%s' "$line"
}

# Waits (at most $2 tenths of a second) until file $1 has a line matching $3 after line $4, or
# the process $5 has ended. Returns 0 if the line came.
wait_line() {
  local file=$1 tenths=$2 re=$3 after=$4 pid=$5 i
  for ((i = 0; i < tenths; i++)); do
    tail -n +"$((after + 1))" "$file" | grep -qE "$re" && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n +"$((after + 1))" "$file" | grep -qE "$re"; return; }
    sleep 0.1
  done
  return 1
}

# Ends the job (osmo kill, then its anchor if need be) and reaps our `osmo run`.
stop_job() {
  local id=$1 jp=$2 i
  if [ -n "$id" ]; then tb "$HOME_NODE" -- "$OSMO" kill "$id" >/dev/null 2>&1 || true; fi
  for ((i = 0; i < 300; i++)); do kill -0 "$jp" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$jp" 2>/dev/null || true  # our osmo run: its stream's end kills the job
  wait "$jp" 2>/dev/null || true
}

add_row() {  # size dirty method status freeze total copy stall job_after note
  local f fields=()
  for f in "$@"; do fields+=("${f//$'\t'/ }"); done
  (IFS=$'\t'; echo "${fields[*]}") >>"$rows"
}

# One job of SIZE dirtying DIRTY MiB/s, moved n2 -> n3 with METHOD; appends its row.
measure() {
  local size=$1 bytes=$2 dirty_rate=$3 method=$4
  local copy=${copy_ms[$bytes]:--}
  local out="$tmp/job-$size-$dirty_rate-$method.out"
  : >"$out"  # exists before the background command opens it: wait_line reads it at once
  "$OSMO" testbed exec "$HOME_NODE" -- "$OSMO" run -v --node "$SRC" "$BENCH" job "$size" "$dirty_rate" \
    --seconds 600 </dev/null >"$out" 2>&1 9>&- &
  local jp=$!
  bg_pids+=("$jp")
  local id=""
  wait_line "$out" 3000 '^ready$' 0 "$jp" || true
  id=$(sed -n 's/^osmo run: job \([^ ]*\) runs on .*/\1/p' "$out" | head -1)
  if ! grep -qx ready "$out" || [ -z "$id" ]; then
    add_row "$bytes" "$dirty_rate" "$method" "no job" - - "$copy" - - \
      "the job did not start: $(grep -v '^job: stalled' "$out" | tail -1)"
    stop_job "$id" "$jp"
    return
  fi
  sleep "$settle"
  local mark status=ok freeze=- total=- note="" parsed to m rc=0
  mark=$(wc -l <"$out")
  if [ "$have_migrate" = 0 ]; then
    status="not available"; note="osmo migrate is not in this build"
  else
    timeout 900 "$OSMO" testbed exec "$HOME_NODE" -- "$OSMO" migrate --json "$id" "$DST" --method "$method" \
      >"$tmp/migrate.json" 2>"$tmp/migrate.err" 9>&- || rc=$?
    if [ "$rc" != 0 ]; then
      status="not available"
      note="osmo migrate exited $rc: $(head -1 "$tmp/migrate.err")"
      [ "$rc" = 124 ] && note="osmo migrate did not finish within 900 s"
    elif parsed=$(python3 "$RESULTS" migrate-json "$tmp/migrate.json" 2>"$tmp/parse.err"); then
      IFS=$'\t' read -r freeze total to m <<<"$parsed"
      [ "$to" = "$DST" ] || note="osmo migrate reported to=$to"
      [ "$m" = "$method" ] || note="${note:+$note; }osmo migrate reported method=$m"
    else
      status="bad output"; note=$(head -1 "$tmp/parse.err")
    fi
  fi
  # Where is the job now, does it still run, and is its memory intact?
  local want=$SRC where node migrations check=none stall=- ticks=0
  [ "$status" = ok ] && want=$DST
  where=$(tb "$HOME_NODE" -- "$OSMO" ps --json 2>/dev/null | python3 "$RESULTS" ps-job "$id" 2>&1) || true
  IFS=$'\t' read -r node migrations <<<"$where"
  [ "$node" = absent ] && node=gone
  if [ "$node" != "$want" ]; then
    note="${note:+$note; }osmo ps shows the job on ${node:-?}, expected $want"
  elif [ "$status" = ok ] && [ "${migrations:-0}" -lt 1 ]; then
    note="${note:+$note; }osmo ps shows migrations=${migrations:-?} after a migration"
  fi
  wait_line "$out" 50 '^[0-9]+ [0-9a-f]{8}$' "$mark" "$jp" || true  # it keeps printing
  tb "$HOME_NODE" -- "$OSMO" kill -USR1 "$id" >/dev/null 2>&1 || true
  wait_line "$out" 1200 '^job: full check at tick' "$mark" "$jp" || true
  IFS=$'\t' read -r ticks stall check < <(python3 "$RESULTS" job-log "$out" "$mark") || true
  [ "$ticks" -gt 0 ] || note="${note:+$note; }the job printed nothing after the migration"
  if ! kill -0 "$jp" 2>/dev/null; then
    note="${note:+$note; }the job ended: $(grep -v '^job: stalled' "$out" | tail -1)"
  fi
  # A figure counts only for a job that arrived and is intact; otherwise keep it in the notes.
  if [ "$status" = ok ] && { [ "$node" != "$DST" ] || [ "$check" != intact ]; }; then
    [ "$node" != "$DST" ] && status="not moved" || status="not intact"
    note="${note:+$note; }osmo migrate reported total ${total} ms, freeze ${freeze} ms"
  fi
  add_row "$bytes" "$dirty_rate" "$method" "$status" "$freeze" "$total" "$copy" "$stall" \
    "${node:-?} $check" "$note"
  stop_job "$id" "$jp"
}

fits() {  # bytes: a job plus its copy at the target, and 1 GiB to spare
  local need=$(($1 * 2 + (1 << 30))) have
  have=$(mem_available)
  [ "$have" -ge "$need" ] && return 0
  echo "  $2: skipped, needs $((need >> 20)) MiB available, the machine has $((have >> 20)) MiB"
  return 1
}

echo "baseline: plain TCP copy $SRC -> $DST of the same bytes (osmo-migrate-bench send/recv, best of 3)"
for size in $sizes; do
  bytes=$(to_bytes "$size")
  fits "$bytes" "$size" || continue
  baseline "$size" "$bytes"
  for method in $methods; do measure "$size" "$bytes" 0 "$method"; done
done
if [ "$dirty" -gt 0 ]; then
  bytes=$(to_bytes "$dirty_size")
  if fits "$bytes" "$dirty_size"; then
    [ -n "${copy_ms[$bytes]:-}" ] || baseline "$dirty_size" "$bytes"
    for method in $methods; do measure "$dirty_size" "$bytes" "$dirty" "$method"; done
  fi
fi

echo
echo "osmo migrate $SRC -> $DST (job started from $HOME_NODE); copy ms = baseline above, prefaulted"
python3 "$RESULTS" table "$rows"
if ! cut -f4 "$rows" | grep -qx ok; then
  echo "MIGRATION FIGURES ARE MISSING: no migration succeeded (see the notes); only the baseline was measured"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
