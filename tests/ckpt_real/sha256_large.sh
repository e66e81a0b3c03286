#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt_real.sha256_large: sha256sum of a 1 GiB file (sparse, with seeded random blocks written at
# 64 places so the digest depends on the content), checkpointed once it has read half the file,
# restored, and its output (the digest line) compared with the reference. The file is given as
# an argument, so the restored process must carry an fd opened by the program itself with its
# offset. Needs OSMO=/path/to/osmo.
name=sha256_large
bin=sha256sum
. "$(dirname "$0")/real_lib.sh"
real_setup
: >"$work/in"
big="$work/big.bin"
truncate -s 1G "$big"
for k in $(seq 0 63); do
  head -c 65536 /dev/zero | tr '\0' "$(printf "\\$(printf '%03o' $((k + 65)))")" |
    dd of="$big" bs=65536 seek=$((k * 256 + 7)) conv=notrunc status=none
done
real_run_reference "$big"
[ "$ref_status" = 0 ] || finish fail "reference sha256sum exited with $ref_status"
real_run_checkpointed "progress_read_bytes $((1 << 29))" "$big"
