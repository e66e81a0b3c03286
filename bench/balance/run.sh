#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/balance: makespan of jobs all started on one node with balancing on, off and the ideal, on
# the testbed (issue 10). Needs root. Extra arguments go to balance_bench.py (--cases, --jobs, ...).
set -euo pipefail
exec python3 "$(dirname "$0")/balance_bench.py" "$OSMO_BUILD/osmo" "$@"
