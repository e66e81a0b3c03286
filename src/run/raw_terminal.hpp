// SPDX-License-Identifier: GPL-2.0-or-later
// The caller's terminal while a job with a pty owns it (issue 12): `osmo run` puts it in raw mode,
// as ssh does, so that every key (Ctrl-C, Ctrl-Z, Ctrl-D, arrows) reaches the job's own line
// discipline as a byte, and restores the settings it found on every way out of run_anchor (the
// job's end, a lost node, a signal that ends `osmo run`) and whenever `osmo run` itself stops.
#pragma once

#include <termios.h>

#include "base/result.hpp"

namespace osmo::run {

class RawTerminal {
 public:
  // `output`: also turn off output processing (OPOST), for a job whose output comes through its
  // pty, which has processed it already (a full-screen program relies on a bare "\n"). Left on
  // when the job's stdout is not the pty: it then reaches the terminal raw, through a pipe
  // (`osmo run ls | head`), and other programs may write to the terminal meanwhile.
  RawTerminal(int fd, bool output) : fd_(fd), output_(output) {}
  ~RawTerminal() { leave(); }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

  // Saves the terminal's current settings and switches it to raw mode (no echo, no line editing,
  // no signal keys; no output processing unless `output` is false). Called again after leave() (a
  // resumed `osmo run`), it saves afresh: the shell may have changed the settings meanwhile.
  Status enter();
  // Puts back the settings enter() saved; idempotent. Async-signal-safe (tcsetattr only).
  void leave();
  bool raw() const { return raw_; }

 private:
  int fd_;
  bool output_;
  termios saved_{};
  bool raw_ = false;
};

}  // namespace osmo::run
