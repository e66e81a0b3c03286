// SPDX-License-Identifier: GPL-2.0-or-later
// Raw mode for the caller's terminal (see raw_terminal.hpp).
#include "run/raw_terminal.hpp"

#include <unistd.h>

namespace osmo::run {

Status RawTerminal::enter() {
  if (raw_) return ok_status();
  if (::tcgetattr(fd_, &saved_) != 0)
    return errno_error("cannot read the settings of terminal fd {}", fd_);
  termios t = saved_;
  // As ssh's enter_raw_mode: input bytes pass untranslated (the job's pty translates them with the
  // caller's own settings), output is not post-processed (the job's pty did that already).
  t.c_iflag |= IGNPAR;
  t.c_iflag &=
      ~static_cast<tcflag_t>(ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXANY | IXOFF | IUCLC);
  t.c_lflag &= ~static_cast<tcflag_t>(ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHONL | IEXTEN);
  if (output_) t.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (::tcsetattr(fd_, TCSADRAIN, &t) != 0)
    return errno_error("cannot put terminal fd {} in raw mode", fd_);
  raw_ = true;
  return ok_status();
}

void RawTerminal::leave() {
  if (!raw_) return;
  raw_ = false;
  (void)::tcsetattr(fd_, TCSADRAIN, &saved_);
}

}  // namespace osmo::run
