// SPDX-License-Identifier: GPL-2.0-or-later
// JobSpec capture (client side), kernel-sourced credentials (daemon side) and JSON encoding.
#include "run/job_spec.hpp"

#include <sys/random.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <fmt/format.h>

#include "platform/linux/proc_parse.hpp"
#include "platform/linux/sysfs_io.hpp"

extern char** environ;

namespace osmo::run {

using nlohmann::json;

namespace {

json tty_to_json(const TtySpec& t) {
  return json{{"in", t.in},         {"out", t.out},         {"err", t.err},       {"iflag", t.iflag},
              {"oflag", t.oflag},   {"cflag", t.cflag},     {"lflag", t.lflag},   {"cc", t.cc},
              {"ispeed", t.ispeed}, {"ospeed", t.ospeed},   {"rows", t.rows},     {"cols", t.cols},
              {"xpixel", t.xpixel}, {"ypixel", t.ypixel}};
}

// Strict: a tty object with a missing or mistyped field is refused (json::at / get throw).
TtySpec tty_from_json(const json& j) {
  TtySpec t;
  t.in = j.at("in").get<bool>();
  t.out = j.at("out").get<bool>();
  t.err = j.at("err").get<bool>();
  t.iflag = j.at("iflag").get<std::uint32_t>();
  t.oflag = j.at("oflag").get<std::uint32_t>();
  t.cflag = j.at("cflag").get<std::uint32_t>();
  t.lflag = j.at("lflag").get<std::uint32_t>();
  t.cc = j.at("cc").get<std::vector<std::uint8_t>>();
  t.ispeed = j.at("ispeed").get<std::uint32_t>();
  t.ospeed = j.at("ospeed").get<std::uint32_t>();
  t.rows = j.at("rows").get<std::uint16_t>();
  t.cols = j.at("cols").get<std::uint16_t>();
  t.xpixel = j.value("xpixel", std::uint16_t{0});
  t.ypixel = j.value("ypixel", std::uint16_t{0});
  return t;
}

}  // namespace

json to_json(const JobSpec& s) {
  json rl = json::array();
  for (const auto& r : s.rlimits) rl.push_back({r.resource, r.cur, r.max});
  json out = json{{"id", s.id},     {"home", s.home},   {"node", s.node},           {"argv", s.argv},
              {"env", s.env},   {"cwd", s.cwd},     {"umask", s.umask},         {"rlimits", rl},
              {"uid", s.uid},   {"gid", s.gid},     {"groups", s.groups},       {"state_dir", s.state_dir},
              {"attach_token", s.attach_token}, {"no_migrate", s.no_migrate}};
  if (s.tty) out["tty"] = tty_to_json(*s.tty);
  if (s.no_spread) out["no_spread"] = true;
  if (!s.parent.empty()) out["parent"] = s.parent;
  if (!s.exec_path.empty()) out["exec_path"] = s.exec_path;
  return out;
}

Result<JobSpec> job_spec_from_json(const json& j) {
  JobSpec s;
  try {
    s.id = j.value("id", "");
    s.home = j.value("home", "");
    s.node = j.value("node", "");
    s.argv = j.at("argv").get<std::vector<std::string>>();
    s.env = j.value("env", std::vector<std::string>{});
    s.cwd = j.value("cwd", "/");
    s.umask = j.value("umask", 022u) & 0777u;
    for (const auto& r : j.value("rlimits", json::array()))
      s.rlimits.push_back(Rlimit{r.at(0).get<int>(), r.at(1).get<std::uint64_t>(),
                                 r.at(2).get<std::uint64_t>()});
    s.uid = j.at("uid").get<uid_t>();
    s.gid = j.at("gid").get<gid_t>();
    s.groups = j.value("groups", std::vector<gid_t>{});
    s.state_dir = j.value("state_dir", "");
    s.attach_token = j.value("attach_token", "");
    if (j.contains("tty") && !j["tty"].is_null()) s.tty = tty_from_json(j["tty"]);
    s.no_migrate = j.value("no_migrate", false);
    s.no_spread = j.value("no_spread", false);
    s.parent = j.value("parent", "");
    s.exec_path = j.value("exec_path", "");
  } catch (const json::exception& e) {
    return make_error("malformed job spec: {}", e.what());
  }
  if (s.argv.empty() || s.argv[0].empty()) return make_error("malformed job spec: empty argv");
  if (s.tty && s.tty->cc.size() > NCCS)
    return make_error("malformed job spec: {} terminal control characters (at most {})", s.tty->cc.size(), NCCS);
  if (s.tty && !s.tty->in && !s.tty->out && !s.tty->err)
    return make_error("malformed job spec: a terminal that none of stdin, stdout, stderr uses");
  for (const auto& r : s.rlimits)
    if (r.resource < 0 || r.resource >= RLIM_NLIMITS)
      return make_error("malformed job spec: unknown rlimit resource {}", r.resource);
  return s;
}

Result<JobSpec> capture_local_spec(std::vector<std::string> argv) {
  JobSpec s;
  s.argv = std::move(argv);
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) s.env.emplace_back(*e);
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) == nullptr) return errno_error("cannot read the working directory");
  s.cwd = buf;
  const mode_t m = ::umask(0);
  ::umask(m);
  s.umask = m;
  for (int r = 0; r < RLIM_NLIMITS; ++r) {
    rlimit l{};
    if (getrlimit(r, &l) != 0) return errno_error("getrlimit({})", r);
    s.rlimits.push_back(Rlimit{r, l.rlim_cur, l.rlim_max});
  }
  s.uid = getuid();
  s.gid = getgid();
  return s;
}

Result<TtySpec> capture_tty(int fd) {
  termios tio{};
  if (::tcgetattr(fd, &tio) != 0) return errno_error("cannot read the terminal settings of fd {}", fd);
  TtySpec t;
  t.iflag = tio.c_iflag;
  t.oflag = tio.c_oflag;
  t.cflag = tio.c_cflag;
  t.lflag = tio.c_lflag;
  t.cc.assign(std::begin(tio.c_cc), std::end(tio.c_cc));
  t.ispeed = ::cfgetispeed(&tio);
  t.ospeed = ::cfgetospeed(&tio);
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
    t.rows = ws.ws_row;
    t.cols = ws.ws_col;
    t.xpixel = ws.ws_xpixel;
    t.ypixel = ws.ws_ypixel;
  }
  return t;
}

Result<std::vector<gid_t>> read_process_groups(pid_t pid) {
  const std::string path = fmt::format("/proc/{}/status", pid);
  auto text = platform::read_text_file(path);
  if (!text.ok()) return Error{text.error().code, fmt::format("cannot open {}", path)};
  auto st = platform::parse_pid_status(*text);
  if (!st.ok()) return make_error("{}: {}", path, st.error().message);
  if (!st->has_groups) return make_error("{} has no Groups line (process {} gone?)", path, pid);
  return std::vector<gid_t>(st->groups.begin(), st->groups.end());
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

std::string new_job_id() {
  std::uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) v = static_cast<std::uint64_t>(getpid()) * 0x9E3779B97F4A7C15ull ^ static_cast<std::uint64_t>(time(nullptr));
  return fmt::format("{:012x}", v & 0xffffffffffffull);
}

Result<std::string> new_attach_token() {
  unsigned char b[16];
  if (getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b))
    return errno_error("getrandom for a job's attach token");
  std::string out;
  for (unsigned char c : b) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace osmo::run
