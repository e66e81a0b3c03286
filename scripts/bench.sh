#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds and runs every benchmark under bench/. Each prints its figures next to a baseline measured
# in the same run (ratios), never a pass/fail on time. Some need root (the testbed, ptrace).
# Usage: scripts/bench.sh [NAME...]   (names: the folders under bench/; default all)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
osmo_install_deps
osmo_build
want=("$@")
[ ${#want[@]} -gt 0 ] || want=($(cd "$OSMO_ROOT/bench" && ls -d */ | tr -d /))
for name in "${want[@]}"; do
  osmo_log "bench/$name"
  dir="$OSMO_ROOT/bench/$name"
  if [ -x "$dir/run.sh" ]; then
    OSMO_BUILD="$OSMO_BUILD" "$dir/run.sh"
  else
    for exe in "$OSMO_BUILD/bench/$name"/*; do
      [ -f "$exe" ] && [ -x "$exe" ] && "$exe"
    done
  fi
done
