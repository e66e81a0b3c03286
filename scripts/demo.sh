#!/usr/bin/env bash
# The osmo demo: installs what is missing, builds, starts a 4-node cluster on this machine (each node
# in its own network namespace with half a CPU), runs real programs through it and shows what the
# cluster sees: membership, load spreading, a node failing and coming back, a graceful leave.
# Everything it starts is stopped again at the end (also on Ctrl-C or failure).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
osmo_install_deps
osmo_build
OSMO="$OSMO_BUILD/osmo"

if [ "$(id -u)" -eq 0 ]; then
  UP_ARGS=(-n 4 --cpus-per-node 0.5)
else
  echo "not root: using the loopback testbed (no namespaces, no CPU quotas)"
  UP_ARGS=(-n 4 --loopback)
fi

cleanup() { "$OSMO" testbed down >/dev/null 2>&1 || true; }
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

step "Real work: bc computes digits of pi inside n2 and n3; every node sees their load rise"
"$OSMO" testbed exec n2 -- timeout 20 bc -l <<<'scale=4000; 4*a(1)' >/tmp/osmo-demo-pi2.txt &
bc2=$!
"$OSMO" testbed exec n3 -- timeout 20 bc -l <<<'scale=4000; 4*a(1)' >/tmp/osmo-demo-pi3.txt &
bc3=$!
sleep 3
on n4 nodes
wait "$bc2" "$bc3" || true
echo "pi from n2 starts with $(head -c 20 /tmp/osmo-demo-pi2.txt)"
rm -f /tmp/osmo-demo-pi2.txt /tmp/osmo-demo-pi3.txt

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
