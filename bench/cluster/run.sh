#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/cluster: convergence, failure detection, daemon CPU/memory at rest on the 4-node testbed.
set -euo pipefail
exec python3 "$(dirname "$0")/cluster_bench.py" "$OSMO_BUILD/osmo" "$OSMO_BUILD/sim/osmo-sim" "$@"
