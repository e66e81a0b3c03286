#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The osmo executable must need no shared library but glibc's (cmake/static_deps): each one costs
# every `osmo run` start-up time, and a shared libstdc++ pulled in by some new dependency would
# also put a second copy of libstdc++ beside the static one. Usage: static_link_test.sh OSMO_BIN
set -euo pipefail
osmo="$1"
needed=$(readelf -d "$osmo" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
bad=$(echo "$needed" | tr ' ' '\n' | grep -v -E '^(libc\.so\.6|libm\.so\.6|ld-linux-x86-64\.so\.2)?$' || true)
if [ -n "$bad" ]; then
  echo "FAIL: $osmo needs shared libraries beyond glibc: $bad (all: $needed)" >&2
  exit 1
fi
"$osmo" --version >/dev/null
echo "ok: $osmo needs only $needed"
