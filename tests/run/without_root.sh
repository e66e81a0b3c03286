#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run.without_root: the README's promise that without root `osmo testbed up -n 3 --loopback` runs
# real jobs. As the user nobody (setpriv from root: CI is root), a loopback cluster of 3 daemons
# runs `osmo run` jobs in a user namespace of nobody's own (platform/linux/user_ns.hpp): output,
# exit status, placement on other nodes, the job's own PID namespace and /proc, and its ids are
# nobody's, not root's. What needs root says so in one line: `osmo migrate` (checkpoint and
# restore), and a job for another user is refused. Needs root to become nobody (skips outside
# CI). Everything started here is nobody's, stopped by `testbed down` and then by pid.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/skip.sh
. "$here/../lib/skip.sh"
osmo_src=${1:?usage: $0 /path/to/osmo}
osmo_require_root "run.without_root (becomes the user nobody)"
command -v setpriv >/dev/null || { echo "FAIL: setpriv (util-linux) is missing" >&2; exit 1; }

# The binary and a home nobody can reach (the build tree may be private to root).
work=$(mktemp -d /tmp/osmo-without-root.XXXXXX)
chmod 0755 "$work"
install -m 0755 "$osmo_src" "$work/osmo"
mkdir -p "$work/home/run" && chown -R 65534:65534 "$work/home"
# Three free consecutive ports on loopback.
base=$(python3 - <<'PY'
import socket
for base in range(27000, 28000, 7):  # below the ephemeral ports (32768-)
    socks = []
    try:
        for p in range(base, base + 3):
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, kind); socks.append(s); s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(base); break
PY
)
as_nobody() {
  (cd "$work/home" && HOME="$work/home" XDG_RUNTIME_DIR="$work/home/run" OSMO_TESTBED_INSTANCE=rootless \
    setpriv --reuid 65534 --regid 65534 --clear-groups "$@")
}
cleanup() {
  as_nobody "$work/osmo" testbed down >/dev/null 2>&1
  # Anything of nobody's still running from this test's binary (by pid, never by name).
  local p
  for p in $(ps -u 65534 -o pid= 2>/dev/null); do
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$work/osmo" ] && kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
failures=0
check() {  # check NAME STATUS OUTPUT-FILE
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1:" >&2; cat "$3" >&2; failures=$((failures + 1)); fi
}
on() { local node=$1; shift; as_nobody "$work/osmo" testbed exec "$node" -- "$work/osmo" "$@"; }

as_nobody "$work/osmo" testbed up -n 3 --loopback --base-port "$base" >"$work/up" 2>&1
check "testbed up --loopback as nobody" $? "$work/up"
for _ in $(seq 1 100); do
  [ "$(on n1 nodes --json 2>/dev/null | python3 -c 'import json,sys; print(sum(n["state"]=="alive" for n in json.load(sys.stdin)))' 2>/dev/null)" = 3 ] && break
  sleep 0.2
done

# A real program's output on another node, its own PID namespace and /proc, nobody's ids.
on n1 run --node n2 -- sh -c 'echo "pid $$"; id -u; id -g; ls /proc | grep -c "^[0-9]"; echo "scale=200; 4*a(1)" | bc -l | head -c 12; echo' >"$work/out" 2>"$work/err"
rc=$?
{ [ $rc -eq 0 ] && [ "$(sed -n 1p "$work/out")" = "pid 2" ] && [ "$(sed -n 2p "$work/out")" = 65534 ] \
  && [ "$(sed -n 3p "$work/out")" = 65534 ] && [ "$(sed -n 5p "$work/out")" = "3.1415926535" ]; }
check "a job on another node runs as nobody, as pid 2 of its own PID namespace (osmo init is 1)" $? "$work/out"
procs=$(sed -n 4p "$work/out")
{ [ -n "$procs" ] && [ "$procs" -le 6 ]; }
check "its /proc is its own namespace's ($procs processes)" $? "$work/out"

on n1 run --node n3 -- sh -c 'exit 7' >"$work/out7" 2>&1
[ $? -eq 7 ]
check "exit status 7 comes back" $? "$work/out7"

# A job that stays a moment: listed as not movable, and migrate says why in one line.
on n1 run --node n2 -- sleep 30 >/dev/null 2>&1 &
runner=$!
id=""
for _ in $(seq 1 50); do
  id=$(on n1 ps --json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j[0]["id"] if j else "")' 2>/dev/null)
  [ -n "$id" ] && break
  sleep 0.2
done
on n1 ps --json >"$work/ps" 2>&1
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j and j[0].get("movable") is False else 1)' "$work/ps"
check "osmo ps lists it as not movable" $? "$work/ps"
on n1 migrate "$id" n3 >"$work/mig" 2>&1
{ [ $? -eq 1 ] && [ "$(wc -l <"$work/mig")" -eq 1 ] && grep -q "runs without root; moving a job needs root" "$work/mig"; }
check "osmo migrate says in one line that moving needs root" $? "$work/mig"
on n1 kill "$id" >/dev/null 2>&1
wait "$runner" 2>/dev/null

# A job for another user (root, who may open nobody's socket) is refused, not run as nobody.
(cd "$work" && OSMO_SOCKET="$work/home/run/osmo-testbed-rootless/n1/osmod.sock" "$work/osmo" run --node n2 -- id -u) \
  >"$work/other" 2>&1
{ [ $? -ne 0 ] && grep -q "without root (as uid 65534): it can run only that user's jobs, not uid 0's" "$work/other" \
  && ! grep -qx 65534 "$work/other"; }
check "a job for root sent to a daemon without root is refused" $? "$work/other"

as_nobody "$work/osmo" testbed down >"$work/down" 2>&1
check "testbed down" $? "$work/down"
exit $((failures > 0))
