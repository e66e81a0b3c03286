#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run_demo.sh BUILD_DIR: runs scripts/demo.sh on an existing build (OSMO_DEMO_PREBUILT skips the
# package check and the build) on the suite's testbed instance, holding that instance's lock (the
# same rule as tests/cluster/testbed.py).
# Passes when the demo exits 0; its output is kept in the test log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/skip.sh"
osmo_require_root "the demo (network namespaces, cgroups)"
export OSMO_TESTBED_INSTANCE=${OSMO_TESTBED_INSTANCE-suite}
lock=/run/osmo-testbed-tests${OSMO_TESTBED_INSTANCE:+-$OSMO_TESTBED_INSTANCE}.lock
exec 9>"$lock"
flock -w "${OSMO_TESTBED_LOCK_WAIT:-300}" 9 || { echo "FAIL: the testbed ($lock) stayed busy" >&2; exit 1; }
OSMO_DEMO_PREBUILT=$1 "$here/../../scripts/demo.sh" 9>&-
