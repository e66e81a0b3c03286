// SPDX-License-Identifier: GPL-2.0-or-later
// Opening and configuring a job's pseudo-terminal (see job_pty.hpp).
#include "run/job_pty.hpp"

#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>

namespace osmo::run {

namespace {

Status apply_termios(int master, int n, const TtySpec& tty) {
  termios tio{};
  if (::tcgetattr(master, &tio) != 0) return errno_error("tcgetattr on /dev/pts/{}", n);
  tio.c_iflag = tty.iflag;
  tio.c_oflag = tty.oflag;
  tio.c_cflag = tty.cflag;
  tio.c_lflag = tty.lflag;
  std::copy_n(tty.cc.begin(), std::min<std::size_t>(tty.cc.size(), NCCS), tio.c_cc);
  if (tty.ispeed != 0) (void)::cfsetispeed(&tio, tty.ispeed);
  if (tty.ospeed != 0) (void)::cfsetospeed(&tio, tty.ospeed);
  if (::tcsetattr(master, TCSANOW, &tio) != 0)
    return errno_error("cannot apply the caller's terminal settings to /dev/pts/{}", n);
  return ok_status();
}

// Types `bytes` into the slave's input with echo (and the echo of newlines) off, then puts
// `settings` back. TIOCSTI runs the line discipline's input processing synchronously.
Status type_quietly(int slave, const std::string& bytes, const termios& settings) {
  if (bytes.empty()) return ok_status();
  termios quiet = settings;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
  if (::tcsetattr(slave, TCSANOW, &quiet) != 0) return errno_error("cannot turn the pty's echo off");
  Status st = ok_status();
  for (char c : bytes)
    if (::ioctl(slave, TIOCSTI, &c) != 0) {
      st = errno_error("cannot type {} bytes back into the pty (TIOCSTI)", bytes.size());
      break;
    }
  if (::tcsetattr(slave, TCSANOW, &settings) != 0 && st.ok()) st = errno_error("cannot put the pty's settings back");
  return st;
}

Result<UniqueFd> nonblocking_slave(int master) {
  UniqueFd slave(::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!slave.valid()) return errno_error("cannot open the pty's slave");
  return slave;
}

}  // namespace

Result<std::string> copy_pty_input(int master) {
  OSMO_ASSIGN_OR_RETURN(UniqueFd slave, nonblocking_slave(master));
  termios settings{};
  if (::tcgetattr(slave.get(), &settings) != 0) return errno_error("tcgetattr on the pty");
  const bool canonical = (settings.c_lflag & ICANON) != 0;
  if (canonical) {
    // Leaving canonical mode makes everything the line discipline holds readable, the unfinished
    // line too (n_tty_set_termios); our read is not subject to job control (not our terminal).
    termios raw = settings;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (::tcsetattr(slave.get(), TCSANOW, &raw) != 0) return errno_error("cannot read the pty's input");
  }
  std::string in;
  char buf[4096];
  Status read_status = ok_status();
  for (;;) {
    const ssize_t n = ::read(slave.get(), buf, sizeof buf);
    if (n > 0) {
      in.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) read_status = errno_error("reading the pty's input");
    break;  // 0 (VMIN 0) or EAGAIN: nothing more
  }
  if (canonical && ::tcsetattr(slave.get(), TCSANOW, &settings) != 0)
    return errno_error("cannot put the pty's settings back");
  // Back in, so the pty is as it was whatever becomes of the move.
  OSMO_TRY(type_quietly(slave.get(), in, settings));
  OSMO_TRY(read_status);
  return in;
}

Status inject_pty_input(int master, const std::string& bytes) {
  if (bytes.empty()) return ok_status();
  OSMO_ASSIGN_OR_RETURN(UniqueFd slave, nonblocking_slave(master));
  termios settings{};
  if (::tcgetattr(slave.get(), &settings) != 0) return errno_error("tcgetattr on the pty");
  return type_quietly(slave.get(), bytes, settings);
}

Result<JobPty> open_job_pty(const TtySpec& tty, uid_t uid) {
  JobPty p;
  p.master.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.master.valid()) return errno_error("cannot open a pseudo-terminal (/dev/ptmx)");
  int n = -1;
  if (::ioctl(p.master.get(), TIOCGPTN, &n) != 0)
    return errno_error("cannot read the pty's number");
  p.index = n;
  // Settings on the master apply to the pair (the kernel redirects termios ioctls to the slave).
  // No settings (`osmo run -t` without a terminal): the kernel's defaults, as ssh -tt gives.
  if (!tty.cc.empty()) OSMO_TRY(apply_termios(p.master.get(), n, tty));
  OSMO_TRY(set_window_size(p.master.get(), tty.rows, tty.cols, tty.xpixel, tty.ypixel));
  // Unlocked first: the kernel refuses to open a locked slave, even through TIOCGPTPEER. Until the
  // chown below it is root's (devpts' default), so nobody else can open it meanwhile.
  if (::unlockpt(p.master.get()) != 0) return errno_error("cannot unlock /dev/pts/{}", n);
  {
    // The slave belongs to the job's user, as a login terminal does (mesg, write, ttyname users).
    UniqueFd slave(::ioctl(p.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave.valid()) return errno_error("cannot open the slave of /dev/pts/{}", n);
    const group* g = ::getgrnam("tty");
    const gid_t gid = g != nullptr ? g->gr_gid : static_cast<gid_t>(-1);
    if (::fchown(slave.get(), uid, gid) != 0)
      return errno_error("cannot give /dev/pts/{} to uid {}", n, uid);
    if (::fchmod(slave.get(), 0620) != 0) return errno_error("cannot chmod /dev/pts/{}", n);
  }
  return p;
}

Result<UniqueFd> open_pty_slave(int master, int index) {
  UniqueFd slave(::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave.valid()) return errno_error("cannot open the slave of /dev/pts/{}", index);
  return slave;
}

Status set_window_size(int master, std::uint16_t rows, std::uint16_t cols, std::uint16_t xpixel,
                       std::uint16_t ypixel) {
  winsize ws{};
  ws.ws_row = rows;
  ws.ws_col = cols;
  ws.ws_xpixel = xpixel;
  ws.ws_ypixel = ypixel;
  if (::ioctl(master, TIOCSWINSZ, &ws) != 0)
    return errno_error("cannot set the pty's window size to {}x{}", cols, rows);
  return ok_status();
}

unsigned char pty_eof_char(int master) {
  termios tio{};
  if (::tcgetattr(master, &tio) != 0 || (tio.c_lflag & ICANON) == 0) return 0;
  return tio.c_cc[VEOF];
}

}  // namespace osmo::run
