// SPDX-License-Identifier: GPL-2.0-or-later
// The deputy (see deputy.hpp).
#include "spread/deputy.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "base/fd_io.hpp"
#include "daemon/control_client.hpp"
#include "run/anchor.hpp"
#include "run/exit_status.hpp"
#include "run/job_spec.hpp"
#include "spread/exec_filter.hpp"
#include "spread/stay_local.hpp"

extern char** environ;

namespace osmo::spread {

namespace {

struct DeputyArgs {
  std::string socket, node, parent, path;
  std::uint64_t cookie = 0;
  std::vector<std::string> argv;
};

bool parse(int argc, char** argv, DeputyArgs* out) {
  int i = 2;
  for (; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (a == "--socket") out->socket = v;
    else if (a == "--node") out->node = v;
    else if (a == "--parent") out->parent = v;
    else if (a == "--path") out->path = v;
    else if (a == "--cookie") out->cookie = std::strtoull(v, nullptr, 10);
    else return false;
  }
  for (; i < argc; ++i) out->argv.emplace_back(argv[i]);
  return !out->argv.empty() && !out->path.empty() && !out->socket.empty() && !out->node.empty();
}

void say(const std::string& line) { (void)write_all(2, "osmo spread: " + line + "\n"); }

// The program could not start elsewhere: run it here, as the caller asked (never notified again).
[[noreturn]] void exec_here(const DeputyArgs& a, char** argv_from) {
  exec_bypass(a.path.c_str(), argv_from, environ, a.cookie);
  const int e = errno;
  say(fmt::format("{}: {}", a.path, std::strerror(e)));
  ::_exit(e == ENOENT ? run::kExitNotFound : run::kExitNotExecutable);
}

// Dies of `sig` as the remote program did (no core of ours: a core belongs to the program, on
// its node); exits 128+sig only if the signal cannot kill us.
[[noreturn]] void die_of(int sig) {
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(sig, &dfl, nullptr);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  ::sigprocmask(SIG_UNBLOCK, &s, nullptr);
  ::raise(sig);
  ::_exit(run::kExitSignalBase + sig);
}

}  // namespace

int deputy_main(int argc, char** argv) {
  DeputyArgs a;
  if (!parse(argc, argv, &a)) {
    say("usage: osmo __spread-deputy --socket S --node N --parent JOB --path FILE --cookie C -- ARGV...");
    return run::kExitUsage;
  }
  // In ps and /proc/PID/comm the deputy shows as the program it stands for.
  const std::string comm(program_name(a.argv[0]).substr(0, 15));
  ::prctl(PR_SET_NAME, comm.c_str());
  char** const original_argv = argv + (argc - static_cast<int>(a.argv.size()));

  auto spec = run::capture_local_spec(a.argv);
  if (!spec.ok()) exec_here(a, original_argv);
  spec->exec_path = a.path;
  spec->parent = a.parent;
  nlohmann::json req = run::to_json(*spec);
  for (const char* k : {"id", "home", "node", "uid", "gid", "groups", "state_dir", "attach_token"}) req.erase(k);
  req["op"] = "run.start";
  req["anchor"] = true;
  req["node"] = a.node;
  auto client = daemon::ControlClient::connect(a.socket);
  if (!client.ok()) exec_here(a, original_argv);
  std::vector<UniqueFd> fds;
  auto r = client->call(req, {}, &fds);
  if (!r.ok() || r->contains("failed") || fds.size() != 1) exec_here(a, original_argv);

  UniqueFd registration = client->release();
  run::AnchorOptions opt;
  opt.node = r->value("node", "");
  opt.control_fd = registration.get();
  const nlohmann::json again{{"op", "run.anchor"}, {"id", r->value("id", "")}, {"attach_token", r->value("attach_token", "")}};
  const std::string sock = a.socket;
  opt.reregister = [sock, again]() -> UniqueFd {
    auto c = daemon::ControlClient::connect(sock);
    if (!c.ok() || !c->call(again).ok()) return UniqueFd();
    return c->release();
  };
  // Everything a program can be sent and we can catch, beyond the anchor's usual set (SIGCHLD
  // is ours: we have no children; SIGPIPE is handled as EPIPE by the anchor).
  for (int s : {SIGALRM, SIGVTALRM, SIGPROF, SIGURG, SIGXCPU, SIGXFSZ, SIGPWR, SIGTTIN, SIGTTOU})
    opt.extra_signals.push_back(s);
  for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) opt.extra_signals.push_back(s);
  int killed_by = 0;
  opt.exit_signal = &killed_by;
  const int code = run::run_anchor(std::move(fds[0]), opt);
  if (killed_by != 0) die_of(killed_by);
  // The program's node died or its stream broke: for the caller, the program was killed.
  if (code == run::kExitNodeDied) die_of(SIGKILL);
  return code;
}

}  // namespace osmo::spread
