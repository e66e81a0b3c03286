#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt_real.sh_pipeline: `sh -c 'seq 1 50000000 | sha256sum'`, a tree of three processes joined by
# a pipe, checkpointed as a tree (osmo checkpoint --tree) once seq has written 100 MB into the
# pipe, restored, and its output (the digest line) compared with an undisturbed run's. The bytes
# buffered in the pipe at the dump, the shell waiting for both, and sha256sum's state must all
# survive. Needs OSMO=/path/to/osmo.
name=sh_pipeline
bin=sh
. "$(dirname "$0")/real_lib.sh"
real_setup
: >"$work/in"
# Progress of the tree: bytes written by the shell's children (seq), from /proc/PID/io.
progress_children_wrote() { # N PID
  local c w total=0
  for c in $(cat "/proc/$2/task/$2/children" 2>/dev/null); do
    w=$(sed -n 's/^wchar: //p' "/proc/$c/io" 2>/dev/null)
    total=$((total + ${w:-0}))
  done
  [ "$total" -ge "$1" ]
}
real_run_reference -c 'seq 1 50000000 | sha256sum'
[ "$ref_status" = 0 ] || finish fail "reference pipeline exited with $ref_status"
REAL_CHECKPOINT_ARGS=--tree real_run_checkpointed "progress_children_wrote 100000000" -c 'seq 1 50000000 | sha256sum'
