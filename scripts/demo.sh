#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The osmo demo: installs what is missing, builds, starts a 4-node cluster on this machine (each node
# in its own network namespace with half a CPU), runs real programs through it and shows what the
# cluster sees: membership, load spreading, a node failing and coming back, a graceful leave.
# Everything it starts is stopped again at the end (also on Ctrl-C or failure).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [ -n "${OSMO_DEMO_PREBUILT:-}" ]; then
  OSMO_BUILD=$OSMO_DEMO_PREBUILT  # the test suite runs the demo on its own build (tests/demo)
else
  osmo_install_deps
  osmo_build osmo  # the demo needs only the binary; scripts/test.sh builds the tests
fi
OSMO="$OSMO_BUILD/osmo"

if [ "$(id -u)" -eq 0 ]; then
  UP_ARGS=(-n 4 --cpus-per-node 0.5)
else
  echo "not root: using the loopback testbed (no namespaces, no CPU quotas)"
  UP_ARGS=(-n 4 --loopback)
fi

DEMO_DIR=$(mktemp -d /tmp/osmo-demo.XXXXXX)
cleanup() { "$OSMO" testbed down >/dev/null 2>&1 || true; rm -rf "$DEMO_DIR"; }
trap cleanup EXIT
on() { local node=$1; shift; "$OSMO" testbed exec "$node" -- "$OSMO" "$@"; }
step() { printf '\n\033[1;34m### %s\033[0m\n' "$*"; }
# Bounded wait: until "$@" succeeds, at most $WAIT_S seconds.
wait_for() { local end=$((SECONDS + ${WAIT_S:-15})); until "$@" >/dev/null 2>&1; do
  [ $SECONDS -lt $end ] || { echo "gave up waiting for: $*"; return 1; }; sleep 0.2; done; }
count_state() { on "$1" nodes --json | python3 -c "import json,sys; print(sum(n['state']=='$2' for n in json.load(sys.stdin)))"; }
all_alive() { [ "$(count_state "$1" alive)" = 4 ]; }
node_state() { on "$1" nodes --json | python3 -c "import json,sys; print({n['name']:n['state'] for n in json.load(sys.stdin)}['$2'])"; }

step "osmo $("$OSMO" --version | cut -d' ' -f2-)"
"$OSMO" testbed down >/dev/null 2>&1 || true
"$OSMO" testbed up "${UP_ARGS[@]}"
"$OSMO" testbed list

step "The cluster forms without a master (every node joined through another)"
start=$(date +%s.%N)
for n in n1 n2 n3 n4; do wait_for all_alive "$n"; done
printf 'all 4 nodes see each other as alive after %.2f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"
on n1 nodes

step "Real work: 6 bc jobs computing pi, started with 'osmo run' from n1, spread over the cluster"
pids=()
for i in 1 2 3 4 5 6; do
  "$OSMO" testbed exec n1 -- "$OSMO" run -v -- bc -l <<<"scale=2500+$i; 4*a(1)" >"$DEMO_DIR/pi$i.txt" 2>"$DEMO_DIR/run$i.err" &
  pids+=($!)
  sleep 0.3
done
sleep 2
echo "osmo ps, as n1 sees the cluster while they run:"
on n1 ps || true
echo "load, as n4 sees it:"
on n4 nodes
failed=0
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed=$((failed + 1)); done
for i in 1 2 3 4 5 6; do
  printf 'job %s: %s; pi = %s...\n' "$i" "$(grep -o 'runs on [^ ]*' "$DEMO_DIR/run$i.err" | head -1 || true)" \
    "$(head -c 24 "$DEMO_DIR/pi$i.txt")"
done
[ "$failed" -eq 0 ] || { echo "$failed osmo run job(s) failed:"; cat "$DEMO_DIR"/run*.err; exit 1; }
echo "every job's output is the same as a local run's:"
for i in 1 2 3 4 5 6; do
  bc -l <<<"scale=2500+$i; 4*a(1)" | cmp - "$DEMO_DIR/pi$i.txt" && echo "  job $i: identical"
done

if [ "$(id -u)" -ne 0 ]; then
  step "Moving a running process by hand (checkpoint and restore): skipped, it needs root"
  echo "without root, osmo cannot read another process's memory map files or restore pids (CAP_SYS_ADMIN, CAP_CHECKPOINT_RESTORE)"
else
step "Moving a running process by hand: bc is checkpointed on n2 and restored on n3"
printf 'scale=3000; 4*a(1)\n' >"$DEMO_DIR/pi.bc"
bc -l "$DEMO_DIR/pi.bc" </dev/null >"$DEMO_DIR/pi.reference"
# Started with a clean fd table (only 0-2): pipes inherited from this script would need stand-ins.
bc_pid=$("$OSMO" testbed exec n2 -- python3 -c '
import subprocess, sys
p = subprocess.Popen(["bc", "-l", sys.argv[1]], stdin=subprocess.DEVNULL, stdout=open(sys.argv[2], "w"),
                     stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
print(p.pid)' "$DEMO_DIR/pi.bc" "$DEMO_DIR/pi.moved")
sleep 1
"$OSMO" checkpoint "$bc_pid" -o "$DEMO_DIR/bc.img" --kill
echo "checkpointed pid $bc_pid on n2 into $(du -h "$DEMO_DIR/bc.img" | cut -f1) and killed it; the image:"
# A part of the decoded image (to a file first: a reader that stops early would SIGPIPE osmo).
"$OSMO" image show "$DEMO_DIR/bc.img" > "$DEMO_DIR/bc.img.txt"
sed -n '/^checksums:/p; /^fds:/,/^format:/{/^format:/!p}; /^pages:/,/^regs:/{/^regs:/!p}; /^size:/,/^task:/{/^task:/!p}' \
  "$DEMO_DIR/bc.img.txt"
"$OSMO" testbed exec n3 -- "$OSMO" restore "$DEMO_DIR/bc.img"
cmp "$DEMO_DIR/pi.reference" "$DEMO_DIR/pi.moved" && echo "restored on n3, bc finished: its output is identical to an undisturbed run's"
fi

step "n4's daemon freezes (SIGSTOP): suspected, then declared dead by the others"
"$OSMO" testbed pause n4
n4_dead() { [ "$(node_state n1 n4)" = dead ]; }
WAIT_S=20 wait_for n4_dead
on n1 nodes

step "n4 resumes (SIGCONT): it refutes its death and is alive again everywhere"
"$OSMO" testbed resume n4
for n in n1 n2 n3 n4; do wait_for all_alive "$n"; done
on n1 nodes

step "n3 leaves gracefully: shown as left, not as a failure"
on n3 leave
sleep 1
on n1 nodes

step "Done; the testbed is taken down"
