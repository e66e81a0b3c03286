#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/spread (docs/spread.md): on a 4-node testbed with 0.5 CPU per node, jobs started at n1:
#   1. the cost of the exec filter on an exec that stays: p50 of fork+exec+wait of a static no-op
#      program (not on the stay-local list: the whole decision, placement included, runs) and of
#      /bin/true (on the list), in a spreading job vs a --no-spread job, alternated;
#   2. the makespan of 16 CPU-bound children (each BURN_S of CPU, default 4) with spreading on and
#      off, against the ideal (total work / total capacity);
#   3. `make -j8` of a generated 64-file C project with spreading on and off (same binary checked).
# Needs root (namespaces). Uses $OSMO_TESTBED_INSTANCE's testbed (its own lock), brought up and
# down here. Usage: run.sh [BURN_S]
set -euo pipefail
OSMO="$OSMO_BUILD/osmo"
PROG="$OSMO_BUILD/bench/spread/osmo-spread-prog"
HERE="$(cd "$(dirname "$0")" && pwd)"
BURN_S=${1:-4}
if [ "$(id -u)" -ne 0 ]; then echo "bench/spread: needs root (testbed namespaces)" >&2; exit 1; fi
inst=${OSMO_TESTBED_INSTANCE-}
lock=/run/osmo-testbed-tests${inst:+-$inst}.lock
exec 9>"$lock"
flock -w 600 9 || { echo "bench/spread: the testbed stayed busy for 600 s" >&2; exit 1; }
"$OSMO" testbed down >/dev/null 2>&1 || true
work=$(mktemp -d /dev/shm/osmo-spread-bench.XXXXXX)
chmod 755 "$work"
trap '"$OSMO" testbed down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# The daemons log at debug level: each decision to stay logs its own time ("(N us)").
printf '#!/bin/sh\nexec %s --log-level debug "$@"\n' "$OSMO" > "$work/osmod-debug"
chmod 755 "$work/osmod-debug"
export OSMO_TESTBED_DAEMON="$work/osmod-debug"
run_n1() { "$OSMO" testbed exec n1 -- sh -c "cd $work && exec $OSMO run --node n1 -T $*" 9>&-; }
now() { date +%s.%N; }

# 1. The stay decision's cost, on 2 nodes without a CPU cap: the exec loop leaves n1 far from
# busy, so placement keeps every no-op here (with 0.5 CPU per node one running program is
# already a full node, and the next goes away).
"$OSMO" testbed up -n 2 >/dev/null 9>&-
sleep 3  # every node has gossiped a load
echo "bench/spread: exec cost, 2 nodes, jobs at n1; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2 3; do
  for mode in spread no-spread; do
    opt=""; [ "$mode" = no-spread ] && opt="--no-spread"
    a=$(run_n1 "$opt -- $PROG execs 1000 $PROG noop")
    b=$(run_n1 "$opt -- $PROG execs 1000 /bin/true")
    echo "exec round $round $mode: static no-op ($a)  /bin/true ($b)"
  done
done

state=/run/osmo/testbed${inst:+-$inst}
for what in "on the node's stay-local list" "placement keeps it here"; do
  grep -h "$what (" "$state/n1/osmod.log" | sed 's/.*(\([0-9]*\) us)$/\1/' | sort -n |
    awk -v w="$what" '{v[NR]=$1} END {if (NR) printf "supervisor decision time, stay (%s): p50 %d us, p90 %d us, n=%d\n", w, v[int(NR/2)+1], v[int(NR*0.9)+1], NR}'  || true
done
"$OSMO" testbed down >/dev/null 9>&-
"$OSMO" testbed up -n 4 --cpus-per-node 0.5 >/dev/null 9>&-
sleep 3
echo "bench/spread: 4 nodes x 0.5 CPU, jobs at n1; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# 2. 16 CPU-bound children.
ideal=$(echo "16 * $BURN_S / (4 * 0.5)" | bc -l)
for mode in spread no-spread; do
  opt=""; [ "$mode" = no-spread ] && opt="--no-spread"
  t0=$(now)
  run_n1 "$opt -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do $PROG burn $BURN_S & done; wait'"
  t=$(echo "$(now) - $t0" | bc -l)
  printf "16 children x %s s CPU, %s: makespan %.1f s = %.2fx the ideal %.1f s\n" "$BURN_S" "$mode" "$t" \
    "$(echo "$t / $ideal" | bc -l)" "$ideal"
done

# 3. make -j8 of 64 files.
"$HERE/gen_project.sh" "$work/proj" 64
for mode in spread no-spread; do
  opt=""; [ "$mode" = no-spread ] && opt="--no-spread"
  rm -f "$work"/proj/*.o "$work/proj/prog"
  t0=$(now)
  run_n1 "$opt -- make -s -C proj -j8"
  t=$(echo "$(now) - $t0" | bc -l)
  printf "make -j8, 64 files, %s: %.1f s, binary %s\n" "$mode" "$t" "$(sha256sum < "$work/proj/prog" | cut -c1-16)"
done
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
