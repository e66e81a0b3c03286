#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt.engine_under_job_control: the tree and session engine tests again, run the way CI's
# harness runs them: inside a PID namespace whose session leader is outside it (getsid() = 0)
# and under a shell with job control, so the test program leads its own process group (pgid 2).
# A tree dumped there has an invisible session but a visible group led by a process outside
# the image; that group must be rebuilt (a placeholder), or the children cannot join it. Before
# session.cpp did so, Tree.RestoreHeldTreeStaysStoppedUntilCommitThenRunsWhole failed every
# time in this shape. The PID namespace dies with its pid 1 (the shell), taking every process
# started here with it. Needs ENGINE=/path/to/ckpt_engine_test and root (skips outside CI).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/skip.sh
. "$here/../lib/skip.sh"
engine=${ENGINE:?usage: ENGINE=/path/to/ckpt_engine_test $0}
osmo_require_root "ckpt.engine_under_job_control (PID namespace, checkpoint/restore)"

# shellcheck disable=SC2016  # expanded by the inner shell
exec unshare --pid --fork --mount-proc bash -c '
  set -m
  "$0" --gtest_filter="Tree.*:Transaction.*" &
  wait $!' "$engine"
