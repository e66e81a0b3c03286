// SPDX-License-Identifier: GPL-2.0-or-later
// The pseudo-terminal a job started from a terminal gets on the node that runs it (issue 12, as
// `ssh -t` does): the shepherd opens the master, gives the pair the caller's terminal settings and
// window size, hands the slave to the user, and osmo init's child opens the slave by its number
// (/dev/pts/N) as the job's controlling terminal (job_init.cpp). The relay then carries the
// master's bytes both ways and window changes (relay.hpp); the anchor keeps the caller's terminal
// in raw mode meanwhile (raw_terminal.hpp), so Ctrl-C, Ctrl-Z and Ctrl-D act in the job's line
// discipline, as on a local terminal.
#pragma once

#include <sys/types.h>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "run/job_spec.hpp"

namespace osmo::run {

struct JobPty {
  UniqueFd master;  // O_CLOEXEC; the shepherd's end
  int index = -1;   // the slave is /dev/pts/<index>
};

// Opens a pty pair for a job of user `uid`: the caller's termios and window size from `tty`, the
// slave owned by `uid` (group tty, mode 0620, as login and sshd leave it) and unlocked. The
// slave is not held open here, so the master reads EIO once the job's last process has closed it.
Result<JobPty> open_job_pty(const TtySpec& tty, uid_t uid);

// A new open file description of the pty's slave (O_NOCTTY, close-on-exec), through the master:
// what a migration's target gives the restored job (ckpt::FdResolver::resolve_terminal).
Result<UniqueFd> open_pty_slave(int master, int index);

// The input the pty's line discipline holds for the job and it has not read yet (typed ahead, or a
// line not finished with Enter), copied without being lost: the slave's canonical mode is switched
// off for the read (which makes an unfinished line readable), then the bytes are typed back in
// with echo off (TIOCSTI, root), so the pty is as it was. Precondition: the job is frozen and
// nobody writes into the master meanwhile (a move, after `migrating`).
Result<std::string> copy_pty_input(int master);
// Types `bytes` into the pty's line discipline as if they came from the keyboard, with echo off
// (they were echoed where they were first typed): a move's target gives its new pty the input the
// old one held, before the job runs.
Status inject_pty_input(int master, const std::string& bytes);

// A window size change from the caller: the kernel sends SIGWINCH to the pty's foreground group.
Status set_window_size(int master, std::uint16_t rows, std::uint16_t cols, std::uint16_t xpixel,
                       std::uint16_t ypixel);

// The character that ends input on the pty (c_cc[VEOF]; 0 when the line discipline is not
// canonical, where no byte means EOF).
unsigned char pty_eof_char(int master);

}  // namespace osmo::run
