#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt_real.xz_compress: `xz -1 -T1` compressing a generated 64 MiB text file (seeded
# pseudo-random words: compressible, different everywhere) from stdin to stdout, checkpointed once
# it has read half its input, restored, and the compressed output compared with the reference
# byte for byte (xz output is deterministic for the same input and options). Single-threaded on
# purpose: the engine refuses threads. ZDTM_XZ_MIB overrides the size. Needs OSMO=/path/to/osmo.
name=xz_compress
bin=xz
. "$(dirname "$0")/real_lib.sh"
real_setup
mib=${ZDTM_XZ_MIB:-64}
awk -v bytes=$((mib << 20)) 'BEGIN {
  srand(42)
  n = split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi", w, " ")
  while (total < bytes) {
    line = ""
    for (j = 0; j < 10; j++) line = line w[int(rand() * n) + 1] " "
    line = line int(rand() * 1000000)
    print line
    total += length(line) + 1
  }
}' >"$work/in"
real_run_reference -1 -T1 -c
[ "$ref_status" = 0 ] || finish fail "reference xz exited with $ref_status"
size=$(stat -c %s "$work/in")
real_run_checkpointed "progress_read_bytes $((size / 2))" -1 -T1 -c
