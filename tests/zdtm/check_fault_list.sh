#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# check_fault_list.sh OSMO ENGINE_MD "POINTS...": the fault points the suite tests (faults.cmake)
# must be exactly those the engine offers (osmo checkpoint --list-faults), and each must be
# documented in docs/engine.md. Keeps the three lists from drifting apart.
set -u
osmo=$1 doc=$2 tested=$3
offered=$("$osmo" checkpoint --list-faults 2>&1 | awk '{print $1}' | sort) ||
  { echo "FAIL: osmo checkpoint --list-faults failed: $offered" >&2; exit 1; }
[ -n "$offered" ] || { echo "FAIL: osmo checkpoint --list-faults lists nothing" >&2; exit 1; }
tested=$(printf '%s\n' $tested | sort)
status=0
missing=$(comm -23 <(echo "$offered") <(echo "$tested"))
extra=$(comm -13 <(echo "$offered") <(echo "$tested"))
[ -z "$missing" ] || { echo "FAIL: fault points without a test (add them to tests/zdtm/faults.cmake):" $missing >&2; status=1; }
[ -z "$extra" ] || { echo "FAIL: tests for fault points the engine does not offer:" $extra >&2; status=1; }
if [ ! -f "$doc" ]; then
  echo "FAIL: $doc does not exist (the fault points must be documented there)" >&2
  status=1
else
  for p in $offered; do
    grep -qF -- "$p" "$doc" || { echo "FAIL: fault point $p is not documented in $doc" >&2; status=1; }
  done
fi
# The same expected-failure rule as the other zdtm tests (see run_case.sh).
xfail=$(awk '$1 == "zdtm.faults.listed" { $1 = ""; print }' "$(dirname "$0")/expected_failures.txt")
if [ "$status" = 0 ]; then
  if [ -n "$xfail" ]; then
    echo "XPASS zdtm.faults.listed: remove it from expected_failures.txt (it says:$xfail)" >&2
    exit 1
  fi
  echo "PASS: $(echo "$offered" | wc -l) fault points, all tested and documented"
  exit 0
fi
if [ -n "$xfail" ]; then
  echo "XFAIL zdtm.faults.listed (expected:$xfail)"
  exit 0
fi
exit 1
