# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by scripts/*.sh: dependency installation and the build. Source it; do not run it.
# Everything osmo needs on a fresh Debian 12 machine is installed from here and nowhere else.

OSMO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OSMO_BUILD=${OSMO_BUILD:-$OSMO_ROOT/build}

# Build tools and libraries, then the real programs tests and the demo run through the cluster.
OSMO_DEBS=(
  g++ cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev
  libsodium-dev libssl-dev liblz4-dev libzstd-dev libxxhash-dev libseccomp-dev libncurses-dev
  iproute2 procps util-linux python3 bc xz-utils coreutils
  # Packaging and operations tests (tests/ops): systemd-analyze, help2man, lintian, dpkg-shlibdeps,
  # promtool (Debian ships it in the prometheus package).
  systemd help2man lintian dpkg-dev prometheus
  # The terminal tests (tests/run/tty_testbed_test.py, tests/mon) type into tmux panes; their jobs
  # include vi (vim) and top (procps).
  tmux vim
)

osmo_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

osmo_install_deps() {
  local missing=()
  for p in "${OSMO_DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "osmo: missing Debian packages: ${missing[*]}" >&2
    echo "osmo: run this script as root (or: sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  osmo_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# osmo_build [TARGET...]: configure (warnings are errors in the project's own builds and CI, not in
# a user's plain cmake build) and build the given targets, or everything.
osmo_build() {
  osmo_log "building ${*:-everything} in $OSMO_BUILD"
  cmake -S "$OSMO_ROOT" -B "$OSMO_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOSMO_WERROR=ON >/dev/null
  if [ $# -gt 0 ]; then
    cmake --build "$OSMO_BUILD" -j "$(nproc)" --target "$@"
  else
    cmake --build "$OSMO_BUILD" -j "$(nproc)"
  fi
}
