#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the Debian package osmo_<version>-1_amd64.deb: the osmo binary, the systemd unit, an
# example configuration, man pages (osmo(1) and one per command) generated from the commands' own
# --help so they never drift, bash completion and the DEP-5 copyright file.
#   scripts/package.sh [OUT_DIR]          (default: dist/; installs what is missing, builds osmo)
# OSMO_PACKAGE_BINARY=PATH packages an osmo binary built already (the test suite does).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out=$(mkdir -p "${1:-$OSMO_ROOT/dist}" && cd "${1:-$OSMO_ROOT/dist}" && pwd)
if [ -n "${OSMO_PACKAGE_BINARY:-}" ]; then
  bin=$OSMO_PACKAGE_BINARY
else
  osmo_install_deps
  osmo_build osmo
  bin=$OSMO_BUILD/osmo
fi
version=$("$bin" --version | awk '{print $2}')
[ -n "$version" ] || { echo "package: cannot read the version from $bin --version" >&2; exit 1; }
deb_version=$version-1

work=$(mktemp -d /tmp/osmo-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/osmo" \
  "$root/usr/share/man/man1" "$root/usr/share/bash-completion/completions" "$root/usr/share/doc/osmo" \
  "$root/usr/share/lintian/overrides"

install -m 0755 "$bin" "$root/usr/bin/osmo"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/osmo"
install -m 0644 "$OSMO_ROOT/contrib/systemd/osmod.service" "$root/lib/systemd/system/osmod.service"
install -m 0644 "$OSMO_ROOT/contrib/config/osmod.toml" "$root/etc/osmo/osmod.toml"
install -m 0644 "$OSMO_ROOT/contrib/bash-completion/osmo" "$root/usr/share/bash-completion/completions/osmo"
install -m 0644 "$OSMO_ROOT/contrib/debian/copyright" "$root/usr/share/doc/osmo/copyright"
grep -v '^#' "$OSMO_ROOT/contrib/debian/lintian-overrides" >"$root/usr/share/lintian/overrides/osmo"

# Man pages: help2man runs each command's --help through a wrapper named osmo-<command>.
wrappers=$work/wrappers
mkdir -p "$wrappers"
help2man --no-info --no-discard-stderr --version-string="$version" --section=1 \
  --name="a group of Linux machines that behaves like one big multiprocessor" \
  --include=<(printf '[SEE ALSO]\n%s\n' "$("$bin" --help | awk '/^Subcommands:/{s=1;next} s&&NF{printf "%s.B osmo-%s (1)", (n++?",\n":""), $1}')") \
  --output="$work/osmo.1" "$bin"
"$bin" --help | awk '/^Subcommands:/{s=1;next} s&&NF{name=$1; $1=""; sub(/^ +/,""); print name "\t" $0}' |
while IFS=$'\t' read -r cmd summary; do
  printf '#!/bin/sh\nexec %q %s "$@"\n' "$bin" "$cmd" >"$wrappers/osmo-$cmd"
  chmod +x "$wrappers/osmo-$cmd"
  help2man --no-info --no-discard-stderr --version-string="$version" --section=1 \
    --name="$summary" --output="$work/osmo-$cmd.1" "$wrappers/osmo-$cmd"
done
for page in "$work"/*.1; do gzip -9n -c "$page" >"$root/usr/share/man/man1/$(basename "$page").gz"; done

# Debian's changelog of this package (lintian requires one): one entry for this build.
{
  printf 'osmo (%s) unstable; urgency=medium\n\n' "$deb_version"
  printf '  * Package built from osmo %s (%s).\n\n' "$version" "$("$bin" --version | sed -n 's/.*(\(.*\)).*/\1/p')"
  printf ' -- osmo developers <osmo@example.org>  %s\n' "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")"
} | gzip -9n >"$root/usr/share/doc/osmo/changelog.Debian.gz"

# The shared libraries the binary needs (everything else is linked in): dpkg-shlibdeps reads them.
mkdir -p "$work/src/debian"
printf 'Source: osmo\n\nPackage: osmo\nArchitecture: amd64\n' >"$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/osmo" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')

installed_kb=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: osmo
Version: $deb_version
Architecture: amd64
Maintainer: osmo developers <osmo@example.org>
Installed-Size: $installed_kb
Depends: $depends
Section: admin
Priority: optional
Description: cluster operating layer: many Linux machines as one multiprocessor
 osmo starts each program on the best node of a cluster and moves it live
 between nodes while it runs, so that every node carries its share of the
 load, in the tradition of MOSIX. The program keeps its home: output, input,
 signals and exit status behave as if it had stayed where it was started.
 There is no master: every node decides from load information gossiped
 between the nodes.
 .
 This package contains the osmo command and osmod, the node daemon, with its
 systemd unit.
CONTROL
echo /etc/osmo/osmod.toml >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"

deb=$out/osmo_${deb_version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
