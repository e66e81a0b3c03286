// SPDX-License-Identifier: GPL-2.0-or-later
// The controlling terminal of a session leader, when it is a pseudo-terminal (a job started from a
// terminal has one: docs/run.md "Terminals"). As CRIU's tty.c does, the state that a new pty pair
// must be given for the session to find its terminal as it was: termios, window size, the
// foreground process group, exclusive mode, the slave's owner and mode. The master is not the
// process's (it belongs to whoever relays the terminal), so it is not in the image: at restore the
// caller's FdResolver makes a fresh pair (resolve_terminal) and keeps the master; the engine gives
// the slave this state, makes it the leader's controlling terminal before the leader creates its
// children (restorer/child.cpp: TIOCSCTTY, so they inherit it), gives it to every fd that was open
// on the old /dev/pts/N, and sets the foreground group once every process of the tree exists
// (injected TIOCSPGRP in the leader: only a process of the session may).
//
// Not in the image: the input the line discipline holds for the process (typed, not read yet).
// Whoever writes into the master may still be writing while the image is made; it carries that
// input itself once it has stopped (a move: the relay at the handoff, run/job_pty.hpp
// copy_pty_input, typed into the new pty by the target before the job runs).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "ckpt/kinds.hpp"

namespace osmo::ckpt {
namespace {

// Unix98 pty slaves: majors 136-143 (UNIX98_PTY_SLAVE_MAJOR and the next seven).
bool is_pts_major(unsigned maj) {
  return maj >= 136 && maj <= 143;
}

// The N of "/dev/pts/N", or -1.
int pts_index(const std::string& path) {
  constexpr std::string_view kPrefix = "/dev/pts/";
  if (path.rfind(kPrefix, 0) != 0) return -1;
  int n = -1;
  const char* b = path.data() + kPrefix.size();
  const char* e = path.data() + path.size();
  auto r = std::from_chars(b, e, n);
  return r.ec == std::errc() && r.ptr == e ? n : -1;
}

}  // namespace

Status terminal_dump(DumpContext& c) {
  TerminalImage& t = c.img->terminal;
  t = TerminalImage{};
  // A terminal belongs to a session: only its leader's image carries it.
  if (c.status.nspid.empty() || c.status.nssid.empty() ||
      c.status.nssid.back() != c.status.nspid.back())
    return ok_status();
  OSMO_ASSIGN_OR_RETURN(std::vector<std::string> st, read_stat_fields(c.pid));
  if (st.size() < 9) return make_error("/proc/{}/stat has {} fields", c.pid, st.size());
  long long tty_nr = 0, tpgid = -1;
  (void)std::from_chars(st[7].data(), st[7].data() + st[7].size(), tty_nr);
  (void)std::from_chars(st[8].data(), st[8].data() + st[8].size(), tpgid);
  if (tty_nr <= 0) return ok_status();
  // proc(5): minor in bits 31-20 and 7-0, major in bits 15-8.
  const auto v = static_cast<unsigned long long>(tty_nr);
  const unsigned maj = static_cast<unsigned>((v >> 8) & 0xfff);
  const unsigned min = static_cast<unsigned>((v & 0xff) | ((v >> 12) & 0xfff00));
  // Another kind of controlling terminal (a console, a serial line) is not carried: the
  // restored session has none, as before this section existed.
  if (!is_pts_major(maj)) return ok_status();
  const dev_t dev = makedev(maj, min);

  // Its own fd on the terminal, if it has one (a shell, a job's stdio): the state is read
  // through it, and the foreground group asked as the process itself sees it.
  int own_fd = -1;
  std::string path;
  for (const FdImage& f : c.img->fds) {
    if (f.kind != FdKind::kTty || pts_index(f.path) < 0) continue;
    struct stat sb {};
    if (::stat(fmt::format("/proc/{}/fd/{}", c.pid, f.fd).c_str(), &sb) == 0 &&
        S_ISCHR(sb.st_mode) && sb.st_rdev == dev) {
      own_fd = f.fd;
      path = f.path;
      break;
    }
  }
  const std::string open_path =
      own_fd >= 0 ? fmt::format("/proc/{}/fd/{}", c.pid, own_fd) : fmt::format("/dev/pts/{}", min);
  if (path.empty()) path = fmt::format("/dev/pts/{}", min);
  UniqueFd fd(::open(open_path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return errno_error("cannot open its controlling terminal {} ({})", path, open_path);
  struct stat sb {};
  if (::fstat(fd.get(), &sb) != 0) return errno_error("fstat of its controlling terminal {}", path);
  if (!S_ISCHR(sb.st_mode) || sb.st_rdev != dev)
    return make_error("its controlling terminal {}:{} is not {} as this node sees it", maj, min,
                      path);
  t.index = pts_index(path);
  if (t.index < 0) return make_error("its controlling terminal has no /dev/pts name ({})", path);

  termios tio{};
  if (::tcgetattr(fd.get(), &tio) != 0) return errno_error("tcgetattr on its terminal {}", path);
  t.iflag = tio.c_iflag;
  t.oflag = tio.c_oflag;
  t.cflag = tio.c_cflag;
  t.lflag = tio.c_lflag;
  t.line = tio.c_line;
  t.cc.assign(tio.c_cc, tio.c_cc + NCCS);
  t.ispeed = static_cast<std::uint32_t>(::cfgetispeed(&tio));
  t.ospeed = static_cast<std::uint32_t>(::cfgetospeed(&tio));
  winsize ws{};
  if (::ioctl(fd.get(), TIOCGWINSZ, &ws) != 0)
    return errno_error("TIOCGWINSZ on its terminal {}", path);
  t.rows = ws.ws_row;
  t.cols = ws.ws_col;
  t.xpixel = ws.ws_xpixel;
  t.ypixel = ws.ws_ypixel;
  int excl = 0;
  if (::ioctl(fd.get(), TIOCGEXCL, &excl) == 0) t.exclusive = excl != 0 ? 1 : 0;
  t.uid = sb.st_uid;
  t.gid = sb.st_gid;
  t.mode = sb.st_mode & 07777;

  // The foreground group in the process's own pid numbering: asked by the process itself
  // (TIOCGPGRP answers only a process whose controlling terminal it is), else translated from
  // /proc (its leader's innermost pid).
  if (own_fd >= 0) {
    OSMO_ASSIGN_OR_RETURN(long r, c.tracee->syscall(SYS_ioctl, static_cast<std::uint64_t>(own_fd),
                                                    TIOCGPGRP, c.scratch_data()));
    if (r == 0) {
      std::int32_t pg = 0;
      OSMO_TRY(c.tracee->read_mem(c.scratch_data(), &pg, sizeof pg));
      t.fg_pgrp = pg;
    }
  }
  if (t.fg_pgrp == 0 && tpgid > 0) {
    auto leader = read_status(static_cast<pid_t>(tpgid));
    if (leader.ok() && !leader->nspid.empty()) t.fg_pgrp = leader->nspid.back();
  }
  t.present = true;
  return ok_status();
}

void terminal_encode(const ProcessImage& img, Encoder& e) {
  const TerminalImage& t = img.terminal;
  e.u8(t.present ? 1 : 0);
  if (!t.present) return;
  e.u32(static_cast<std::uint32_t>(t.index));
  e.u32(t.iflag);
  e.u32(t.oflag);
  e.u32(t.cflag);
  e.u32(t.lflag);
  e.u8(t.line);
  e.bytes(t.cc);
  e.u32(t.ispeed);
  e.u32(t.ospeed);
  e.u32(t.rows);
  e.u32(t.cols);
  e.u32(t.xpixel);
  e.u32(t.ypixel);
  e.u32(static_cast<std::uint32_t>(t.fg_pgrp));
  e.u32(t.exclusive);
  e.u32(t.uid);
  e.u32(t.gid);
  e.u32(t.mode);
}

Status terminal_decode(Decoder& d, ProcessImage& img) {
  TerminalImage& t = img.terminal;
  OSMO_ASSIGN_OR_RETURN(std::uint8_t present, d.u8());
  if (present > 1) return make_error("image corrupted: terminal presence {}", present);
  t.present = present == 1;
  if (!t.present) return d.finish();
  OSMO_ASSIGN_OR_RETURN(std::uint32_t index, d.u32());
  t.index = static_cast<std::int32_t>(index);
  OSMO_ASSIGN_OR_RETURN(t.iflag, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.oflag, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.cflag, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.lflag, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.line, d.u8());
  OSMO_ASSIGN_OR_RETURN(t.cc, d.bytes());
  OSMO_ASSIGN_OR_RETURN(t.ispeed, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.ospeed, d.u32());
  std::uint32_t ws[4];
  for (auto& field : ws) {
    OSMO_ASSIGN_OR_RETURN(field, d.u32());
  }
  OSMO_ASSIGN_OR_RETURN(std::uint32_t fg, d.u32());
  t.fg_pgrp = static_cast<std::int32_t>(fg);
  OSMO_ASSIGN_OR_RETURN(t.exclusive, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.uid, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.gid, d.u32());
  OSMO_ASSIGN_OR_RETURN(t.mode, d.u32());
  OSMO_TRY(d.finish());
  if (t.index < 0) return make_error("image corrupted: terminal index {}", t.index);
  if (t.cc.size() != NCCS)
    return make_error("image corrupted: terminal with {} control characters (want {})", t.cc.size(),
                      NCCS);
  for (std::uint32_t w : ws)
    if (w > 0xffff) return make_error("image corrupted: window size field {}", w);
  if (t.fg_pgrp < 0) return make_error("image corrupted: foreground group {}", t.fg_pgrp);
  if (t.mode > 07777) return make_error("image corrupted: terminal mode {:o}", t.mode);
  t.rows = static_cast<std::uint16_t>(ws[0]);
  t.cols = static_cast<std::uint16_t>(ws[1]);
  t.xpixel = static_cast<std::uint16_t>(ws[2]);
  t.ypixel = static_cast<std::uint16_t>(ws[3]);
  return ok_status();
}

void terminal_describe(const ProcessImage& img, nlohmann::json& j) {
  const TerminalImage& t = img.terminal;
  if (!t.present) {
    j["terminal"] = nullptr;
    return;
  }
  j["terminal"] = {{"pts", t.index},
                   {"iflag", t.iflag},
                   {"oflag", t.oflag},
                   {"cflag", t.cflag},
                   {"lflag", t.lflag},
                   {"canonical", (t.lflag & ICANON) != 0},
                   {"echo", (t.lflag & ECHO) != 0},
                   {"rows", t.rows},
                   {"cols", t.cols},
                   {"foreground_pgrp", t.fg_pgrp},
                   {"exclusive", t.exclusive != 0},
                   {"uid", t.uid},
                   {"gid", t.gid},
                   {"mode", fmt::format("{:o}", t.mode)}};
}

Status terminal_apply(int slave, const TerminalImage& t) {
  termios tio{};
  if (::tcgetattr(slave, &tio) != 0) return errno_error("tcgetattr on the new terminal");
  tio.c_iflag = t.iflag;
  tio.c_oflag = t.oflag;
  tio.c_cflag = t.cflag;
  tio.c_lflag = t.lflag;
  tio.c_line = t.line;
  std::copy_n(t.cc.begin(), std::min<std::size_t>(t.cc.size(), NCCS), tio.c_cc);
  (void)::cfsetispeed(&tio, static_cast<speed_t>(t.ispeed));
  (void)::cfsetospeed(&tio, static_cast<speed_t>(t.ospeed));
  if (::tcsetattr(slave, TCSANOW, &tio) != 0)
    return errno_error("cannot give the new terminal the image's settings");
  winsize ws{};
  ws.ws_row = t.rows;
  ws.ws_col = t.cols;
  ws.ws_xpixel = t.xpixel;
  ws.ws_ypixel = t.ypixel;
  if (::ioctl(slave, TIOCSWINSZ, &ws) != 0)
    return errno_error("cannot set the new terminal's window size");
  if (t.exclusive != 0 && ::ioctl(slave, TIOCEXCL) != 0)
    return errno_error("TIOCEXCL on the new terminal");
  if (::fchown(slave, t.uid, t.gid) != 0)
    return errno_error("cannot give the new terminal to uid {}", t.uid);
  if (::fchmod(slave, t.mode) != 0)
    return errno_error("cannot chmod the new terminal to {:o}", t.mode);
  return ok_status();
}

Status terminal_restore_foreground(RestoreContext& c, int fd) {
  const TerminalImage& t = c.img->terminal;
  if (!t.present || t.fg_pgrp == 0 || t.fg_pgrp == c.img->task.pgid) return ok_status();
  // Every signal is blocked while we inject: a TIOCSPGRP from a background group is then allowed
  // (no SIGTTOU), as for a shell that blocks it.
  const std::int32_t pg = t.fg_pgrp;
  OSMO_TRY(c.tracee->write_mem(c.data, &pg, sizeof pg));
  auto r = c.tracee->syscall(SYS_ioctl, static_cast<std::uint64_t>(fd), TIOCSPGRP, c.data);
  if (!r.ok()) return r.take_error();
  if (*r < 0)
    return make_error(
        "cannot make process group {} the foreground of the terminal again (TIOCSPGRP): {}", pg,
        std::strerror(static_cast<int>(-*r)));
  return ok_status();
}

}  // namespace osmo::ckpt
