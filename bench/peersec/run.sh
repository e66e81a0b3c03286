#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/peersec: what encrypting peer streams costs (issue 13: "stdout relay and migration at least
# 80% of their unencrypted throughput"), measured in one run with the nodes' `peer_encryption`
# on and off, alternating (on, off, on, off, ...) so that the load of a shared machine falls on
# both alike. Per round, on a fresh 3-node testbed:
#   stdout relay  from n1: `osmo run --node n2 head -c BYTES /dev/zero | cat >/dev/null`, timed
#                 from start to the last byte (the relay's bytes cross n2 -> n1 through the pumps)
#   migration     a job of SIZE (osmo-migrate-bench job, home n1) moved n2 -> n3 -> n2 with
#                 `osmo migrate --json --method stop`: SIZE / total_ms per move
# and checks that the setting took: n1's `osmo status --json` counts encrypted streams only when on.
# Prints the best figure of each mode and the ratio off/on. Never a pass/fail on time.
#
#   cmake --build build --target osmo osmo-migrate-bench
#   OSMO_BUILD=$PWD/build OSMO_TESTBED_INSTANCE=peersec bench/peersec/run.sh [--rounds 2]
#       [--bytes 2G] [--size 1G]
# Needs root (testbed namespaces). Uses the testbed instance $OSMO_TESTBED_INSTANCE (required: never
# the default one) and takes its lock, waiting OSMO_TESTBED_LOCK_WAIT seconds (300 by default).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OSMO_BUILD=${OSMO_BUILD:-$HERE/../../build}
OSMO="$OSMO_BUILD/osmo"
BENCH="$OSMO_BUILD/bench/migrate/osmo-migrate-bench"
RESULTS="$HERE/../migrate/results.py"
rounds=2 bytes=2G size=1G
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --bytes) bytes=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    *) echo "bench/peersec: unknown argument '$1' (see the top of $0)" >&2; exit 2 ;;
  esac
done
die() { echo "bench/peersec: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (testbed namespaces)"
[ -n "${OSMO_TESTBED_INSTANCE:-}" ] || die "set OSMO_TESTBED_INSTANCE (a testbed instance of your own)"
[ -x "$OSMO" ] && [ -x "$BENCH" ] || die "build osmo and osmo-migrate-bench in $OSMO_BUILD first"
to_bytes() { numfmt --from=iec "$1"; }
relay_bytes=$(to_bytes "$bytes")
job_bytes=$(to_bytes "$size")

tmp=$(mktemp -d /tmp/osmo-bench-peersec.XXXXXX)
bg_pids=()
exec 9>"/run/osmo-testbed-tests-$OSMO_TESTBED_INSTANCE.lock"
flock -w "${OSMO_TESTBED_LOCK_WAIT:-300}" 9 || die "testbed $OSMO_TESTBED_INSTANCE stayed busy"
cleanup() {
  local p
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done  # only what we started
  "$OSMO" testbed down >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
tb() { "$OSMO" testbed exec "$@" 9>&-; }

# Seconds (float) that `osmo run --node n2 head -c N /dev/zero | cat >/dev/null` takes in n1.
relay_once() {
  tb n1 -- bash -c "s=\$(date +%s%N); '$OSMO' run --node n2 head -c $relay_bytes /dev/zero | cat >/dev/null; \
    rc=\${PIPESTATUS[0]}; e=\$(date +%s%N); [ \$rc = 0 ] || exit \$rc; echo \$(( (e - s) / 1000000 ))"
}

# Moves a job of $job_bytes n2 -> n3 -> n2; prints one total_ms per move.
migrate_moves() {
  local out="$tmp/job.out" id parsed freeze total to m
  : >"$out"
  "$OSMO" testbed exec n1 -- "$OSMO" run -v --node n2 "$BENCH" job "$size" 0 --seconds 300 \
    </dev/null >"$out" 2>&1 9>&- &
  local jp=$!
  bg_pids+=("$jp")
  for _ in $(seq 600); do grep -qx ready "$out" && break; sleep 0.1; done
  id=$(sed -n 's/^osmo run: job \([^ ]*\) runs on .*/\1/p' "$out" | head -1)
  [ -n "$id" ] && grep -qx ready "$out" || { echo "job did not start: $(tail -1 "$out")" >&2; kill -KILL "$jp"; return 1; }
  sleep 2
  for to_node in n3 n2; do
    if tb n1 -- "$OSMO" migrate --json "$id" "$to_node" --method stop >"$tmp/m.json" 2>"$tmp/m.err" &&
       parsed=$(python3 "$RESULTS" migrate-json "$tmp/m.json"); then
      IFS=$'\t' read -r freeze total to m <<<"$parsed"
      echo "$total"
    else
      echo "migration to $to_node failed: $(head -1 "$tmp/m.err")" >&2
    fi
    sleep 1
  done
  tb n1 -- "$OSMO" kill "$id" >/dev/null 2>&1 || true
  for _ in $(seq 100); do kill -0 "$jp" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$jp" 2>/dev/null || true
  wait "$jp" 2>/dev/null || true
}

echo "bench/peersec: $("$OSMO" --version 2>/dev/null | head -1), $(nproc) CPUs, $(date -u '+%F %T') UTC"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A best_relay=() best_mig=() all_relay=() all_mig=()
for ((r = 1; r <= rounds; r++)); do
  for mode in true false; do
    "$OSMO" testbed down >/dev/null 2>&1 || true
    OSMO_TESTBED_DAEMON_ARGS="--peer-encryption $mode" "$OSMO" testbed up -n 3 >/dev/null 9>&- ||
      die "osmo testbed up failed"
    sleep 2
    for _ in 1 2; do
      ms=$(relay_once) || { echo "round $r encryption=$mode: the relay failed" >&2; continue; }
      all_relay[$mode]+="$ms "
      if [ -z "${best_relay[$mode]:-}" ] || [ "$ms" -lt "${best_relay[$mode]}" ]; then best_relay[$mode]=$ms; fi
    done
    for ms in $(migrate_moves); do
      ms=${ms%.*}
      all_mig[$mode]+="$ms "
      if [ -z "${best_mig[$mode]:-}" ] || [ "$ms" -lt "${best_mig[$mode]}" ]; then best_mig[$mode]=$ms; fi
    done
    streams=$(tb n1 -- "$OSMO" status | python3 -c 'import json,sys; print(json.load(sys.stdin)["peer"]["encrypted_streams"])')
    echo "round $r, peer_encryption=$mode: relay ms ${all_relay[$mode]:-} | migration ms ${all_mig[$mode]:-} | encrypted streams seen by n1's pumps: $streams"
    if [ "$mode" = true ] && [ "$streams" -eq 0 ]; then die "encryption on, yet no encrypted stream counted"; fi
    if [ "$mode" = false ] && [ "$streams" -ne 0 ]; then die "encryption off, yet $streams encrypted streams counted"; fi
  done
done
"$OSMO" testbed down >/dev/null 2>&1 || true

gbps() { python3 -c "import sys; b,ms=int(sys.argv[1]),float(sys.argv[2]); print(f'{b/ms/1e6:.2f}')" "$1" "$2"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2])*100:.0f}%')" "$1" "$2"; }
echo
printf '%-34s %12s %12s %10s   (target >= 80%%)\n' "best of each" "encrypted" "in clear" "enc/clear"
if [ -n "${best_relay[true]:-}" ] && [ -n "${best_relay[false]:-}" ]; then
  printf '%-34s %9s GB/s %7s GB/s %10s\n' "stdout relay, $bytes n2 -> n1" "$(gbps "$relay_bytes" "${best_relay[true]}")" \
    "$(gbps "$relay_bytes" "${best_relay[false]}")" "$(ratio "${best_relay[false]}" "${best_relay[true]}")"
fi
if [ -n "${best_mig[true]:-}" ] && [ -n "${best_mig[false]:-}" ]; then
  printf '%-34s %9s GB/s %7s GB/s %10s\n' "migration (stop), $size job" "$(gbps "$job_bytes" "${best_mig[true]}")" \
    "$(gbps "$job_bytes" "${best_mig[false]}")" "$(ratio "${best_mig[false]}" "${best_mig[true]}")"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
