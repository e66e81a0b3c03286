#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Errors a person can act on: each mistake an administrator or user makes with the daemon gets one
# line on stderr that says what is wrong and what to do, and a non-zero exit.
set -uo pipefail
osmo=$1
work=$(mktemp -d /tmp/osmo-errors-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

# expect NAME WANT_TEXT COMMAND...: the command fails with exactly one stderr line containing WANT_TEXT.
expect() {
  local name=$1 want=$2; shift 2
  "$@" >"$work/out" 2>"$work/err"
  local rc=$? lines
  lines=$(wc -l <"$work/err")
  if [ "$rc" -eq 0 ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$want" "$work/err"; then
    echo "FAIL $name: rc=$rc, $lines stderr lines, wanted one containing '$want':" >&2
    cat "$work/err" >&2
    failures=$((failures + 1))
  else
    echo "ok   $name: $(cat "$work/err")"
  fi
}

expect no_daemon "is \`osmo daemon\` running" "$osmo" --socket "$work/none.sock" nodes
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$work/stale.sock"
expect stale_socket "is not running" "$osmo" --socket "$work/stale.sock" ps
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  mkdir -m 0700 "$work/private"
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$work/private/osmod.sock"
  chmod 0711 "$work"
  expect no_permission "no permission" setpriv --reuid=65534 --regid=65534 --clear-groups "$osmo" --socket "$work/private/osmod.sock" nodes
fi
printf 'nme = "n1"\n' >"$work/typo.toml"
expect config_unknown_key "unknown key 'nme' (known keys: name," "$osmo" daemon --config "$work/typo.toml"
printf 'speed = "fast"\n' >"$work/type.toml"
expect config_wrong_type "'speed' must be a number" "$osmo" daemon --config "$work/type.toml"
printf 'name = \n' >"$work/syntax.toml"
expect config_syntax "syntax.toml:1" "$osmo" daemon --config "$work/syntax.toml"
expect config_missing "cannot open it: No such file" "$osmo" daemon --config "$work/none.toml"
head -c 32 /dev/urandom >"$work/key" && chmod 644 "$work/key"
expect secret_mode "chmod 600" "$osmo" daemon --secret-file "$work/key" --listen 127.0.0.1:1 --state-dir "$work/state"
printf 'correct horse battery staple 123' >"$work/passphrase" && chmod 600 "$work/passphrase"
expect secret_passphrase "head -c 32 /dev/urandom" "$osmo" daemon --secret-file "$work/passphrase" --listen 127.0.0.1:1 --state-dir "$work/state"
expect secret_missing "create one" "$osmo" daemon --secret-file "$work/nokey" --listen 127.0.0.1:1 --state-dir "$work/state"

[ "$failures" -eq 0 ] || { echo "FAIL: $failures error message(s) not actionable" >&2; exit 1; }
echo "PASS: every mistake got one actionable line"
