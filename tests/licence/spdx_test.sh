#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# spdx_test.sh ROOT: every source file of the project (C/C++, shell, Python, CMake) carries the
# line "SPDX-License-Identifier: GPL-2.0-or-later" within its first three lines, and LICENSE holds
# the GPL version 2 text. Files are those git tracks (a release tarball without .git: every file).
set -euo pipefail
root=$1
cd "$root"
tag='SPDX-License-Identifier: GPL-2.0-or-later'
if [ -d .git ] && command -v git >/dev/null; then
  mapfile -t files < <(git ls-files)
else
  mapfile -t files < <(find . -path ./build -prune -o -type f -print | sed 's|^\./||')
fi
missing=()
checked=0
for f in "${files[@]}"; do
  case "$f" in
    *.cpp|*.c|*.hpp|*.h|*.inc|*.hpp.in|*.sh|*.py|*.cmake|CMakeLists.txt|*/CMakeLists.txt|.ci/run) ;;
    *) continue ;;
  esac
  [ -f "$f" ] || continue
  checked=$((checked + 1))
  head -n 3 "$f" | grep -qF "$tag" || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "licence.spdx: ${#missing[@]} of $checked source files lack '$tag' in their first 3 lines:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
grep -q "GNU GENERAL PUBLIC LICENSE" LICENSE && grep -q "Version 2, June 1991" LICENSE || {
  echo "licence.spdx: LICENSE does not hold the GNU GPL version 2 text" >&2
  exit 1
}
echo "licence.spdx: $checked source files carry the SPDX line; LICENSE is GPL-2.0"
