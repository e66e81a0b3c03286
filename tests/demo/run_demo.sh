#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run_demo.sh BUILD_DIR: runs scripts/demo.sh on an existing build (OSMO_DEMO_PREBUILT skips the
# package check and the build), holding the machine-wide testbed lock of tests/cluster/testbed.py.
# Passes when the demo exits 0; its output is kept in the test log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/skip.sh"
osmo_require_root "the demo (network namespaces, cgroups)"
exec 9>/run/osmo-testbed-tests.lock
flock -w 300 9 || { echo "FAIL: the testbed stayed busy for 300 s" >&2; exit 1; }
OSMO_DEMO_PREBUILT=$1 "$here/../../scripts/demo.sh" 9>&-
