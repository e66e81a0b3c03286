# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by integration tests. `osmo_require_root REASON` exits 77 (ctest: skipped) when not
# root, except under CI=true, where a skipped root test is a failure (exit 1).
osmo_require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if [ "${CI:-}" = "true" ]; then
      echo "FAIL: $1 needs root, and CI must run it" >&2
      exit 1
    fi
    echo "SKIP: $1 needs root (run as root, or in CI)" >&2
    exit 77
  fi
}
