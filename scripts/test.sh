#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what is missing, builds, and runs the whole test suite (unit, simulation, conformance
# and testbed integration tests). Root-only tests skip outside CI; under CI=true a skip fails.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
osmo_install_deps
osmo_build
osmo_log "running tests"
cd "$OSMO_BUILD"
ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@"
