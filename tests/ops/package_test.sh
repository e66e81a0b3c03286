#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian package: scripts/package.sh packages the built binary; lintian reports no error; the
# package unpacked into a temporary root runs (`osmo --version`, `osmo daemon --help`) and holds
# the unit, the example configuration, the copyright file, bash completion and one man page per
# command.
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
for tool in lintian help2man dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/lib.sh installs it)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/osmo-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
deb=$(OSMO_PACKAGE_BINARY=$bin "$here/../../scripts/package.sh" "$work/out")
[ -f "$deb" ] || { echo "FAIL: package.sh printed '$deb', which is no file" >&2; exit 1; }

lintian --tag-display-limit 0 "$deb" >"$work/lintian.txt" 2>&1 || true
cat "$work/lintian.txt"
if grep -q '^E: ' "$work/lintian.txt"; then echo "FAIL: lintian reports errors" >&2; exit 1; fi

root=$work/root
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/osmo" --version | grep -q '^osmo ' || { echo "FAIL: osmo --version from the package" >&2; exit 1; }
"$root/usr/bin/osmo" daemon --help | grep -q -- '--secret-file' || { echo "FAIL: osmo daemon --help from the package" >&2; exit 1; }
for f in lib/systemd/system/osmod.service etc/osmo/osmod.toml usr/share/doc/osmo/copyright \
         usr/share/bash-completion/completions/osmo usr/share/man/man1/osmo.1.gz; do
  [ -s "$root/$f" ] || { echo "FAIL: the package lacks /$f" >&2; exit 1; }
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/osmo/osmod.toml ||
  { echo "FAIL: /etc/osmo/osmod.toml is not a conffile" >&2; exit 1; }
# One man page per command, so none is forgotten when a command is added.
for cmd in $("$bin" --help | awk '/^Subcommands:/{s=1;next} s&&NF{print $1}'); do
  [ -s "$root/usr/share/man/man1/osmo-$cmd.1.gz" ] || { echo "FAIL: no man page for osmo $cmd" >&2; exit 1; }
done
echo "PASS: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB): lintian without errors, unpacked and run"
