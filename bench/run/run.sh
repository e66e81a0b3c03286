#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/run: brings up a 2-node testbed, runs osmo-run-bench inside n1 against n2, takes it down.
# Needs root (namespaces). Usage: run.sh [osmo-run-bench options]
set -euo pipefail
OSMO="$OSMO_BUILD/osmo"
BENCH="$OSMO_BUILD/bench/run/osmo-run-bench"
if [ "$(id -u)" -ne 0 ]; then echo "bench/run: needs root (testbed namespaces)" >&2; exit 1; fi
# The machine-wide testbed lock of tests/cluster/testbed.py: never tear down a testbed that a
# test (or another benchmark) is using.
exec 9>/run/osmo-testbed-tests.lock
flock -w 300 9 || { echo "bench/run: the testbed stayed busy for 300 s" >&2; exit 1; }
"$OSMO" testbed down >/dev/null 2>&1 || true
trap '"$OSMO" testbed down >/dev/null 2>&1 || true' EXIT
"$OSMO" testbed up -n 2 >/dev/null 9>&-  # the daemons must not inherit the lock
sleep 2  # both nodes know each other
"$OSMO" testbed exec n1 -- "$BENCH" "$OSMO" n2 "$@" 9>&-
