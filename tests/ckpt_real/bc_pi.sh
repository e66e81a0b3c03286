#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt_real.bc_pi: `bc -l` computing pi to 2500 digits (scale=2500; 4*a(1)) from a program file
# on stdin, checkpointed once it has used half the CPU time the reference run needed, restored,
# and its output compared with the reference byte for byte. Needs OSMO=/path/to/osmo.
name=bc_pi
bin=bc
. "$(dirname "$0")/real_lib.sh"
real_setup
printf 'scale=2500\n4*a(1)\n' >"$work/in"
real_run_reference -l
[ "$ref_status" = 0 ] || finish fail "reference bc exited with $ref_status"
half=$(( ref_ticks / 2 ))
[ "$half" -ge 20 ] || finish fail "bc finished in $ref_ticks ticks: too quick to checkpoint mid-run"
real_run_checkpointed "progress_cpu_ticks $half" -l
