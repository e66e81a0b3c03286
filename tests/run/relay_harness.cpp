// SPDX-License-Identifier: GPL-2.0-or-later
// Test harness for shepherd + anchor over a socketpair (see relay_harness.hpp).
#include "relay_harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "platform/linux/fd_passing.hpp"
#include "run/anchor.hpp"
#include "run/fd_util.hpp"
#include "run/shepherd.hpp"

namespace osmo::run::testing {

JobSpec make_spec(std::vector<std::string> argv, const std::string& state_dir) {
  auto s = capture_local_spec(std::move(argv));
  JobSpec spec = s.ok() ? *s : JobSpec{};
  spec.id = new_job_id();
  spec.home = "home";
  spec.node = "testnode";
  spec.cwd = "/";
  spec.umask = 022;
  spec.uid = ::getuid();
  spec.gid = ::getgid();
  spec.groups = {};
  spec.state_dir = state_dir;
  return spec;
}

namespace {

// The anchor side of a job run, in a forked child, on `anchor_fd`.
JobRun start_anchor(const JobSpec& spec, bool verbose, int anchor_fd, int shepherd_fd) {
  AnchorOptions opt;
  opt.verbose = verbose;
  return start_anchor_with_home(spec, anchor_fd, shepherd_fd, opt);
}

}  // namespace

JobRun start_anchor_with_home(const JobSpec& spec, int anchor_fd, int shepherd_fd, AnchorOptions base) {
  int home[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, home) != 0) ::abort();
  JobRun r;
  r.state_dir = spec.state_dir;
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    ::abort();
  r.anchor = ::fork();
  if (r.anchor == 0) {
    for (int fd : {shepherd_fd, in[1], out[0], err[0], home[1]})
      if (fd >= 0) ::close(fd);
    AnchorOptions opt = base;
    opt.in_fd = in[0];
    opt.out_fd = out[1];
    opt.err_fd = err[1];
    opt.node = spec.node;
    opt.control_fd = home[0];
    ::_exit(run_anchor(UniqueFd(anchor_fd), opt));
  }
  for (int fd : {anchor_fd, in[0], out[1], err[1], home[0]}) ::close(fd);
  r.stdin_w = in[1];
  r.stdout_r = out[0];
  r.stderr_r = err[0];
  r.home_fd = home[1];
  return r;
}

UniqueFd route_attach(int home_fd, const std::string& id, std::uint32_t epoch, const std::string& node) {
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) return UniqueFd();
  UniqueFd mine(sp[0]), theirs(sp[1]);
  const std::string line = nlohmann::json{{"attach", {{"id", id}, {"epoch", epoch}, {"node", node}}}}.dump() + "\n";
  const int fd = theirs.get();
  if (platform::send_with_fds(home_fd, line.data(), line.size(), {&fd, 1}) != static_cast<ssize_t>(line.size()))
    return UniqueFd();
  return mine;
}

JobRun start_job(const JobSpec& spec, bool verbose, bool prepared_ahead) {
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) ::abort();
  const pid_t shepherd = ::fork();
  if (shepherd == 0) {
    ::close(sp[1]);
    std::optional<PreparedJob> prepared;
    if (prepared_ahead) {
      auto p = PreparedJob::create();
      if (!p.ok()) ::_exit(90);
      prepared.emplace(std::move(p).value());
      ::usleep(20'000);  // the job arrives later than the namespaces were made
    }
    ::_exit(shepherd_main(UniqueFd(sp[0]), spec, std::move(prepared)));
  }
  JobRun r = start_anchor(spec, verbose, sp[1], sp[0]);
  ::close(sp[0]);
  r.shepherd = shepherd;
  return r;
}

JobRun start_job_with(const JobSpec& spec, const std::function<void(int stream_fd)>& start_shepherd) {
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) ::abort();
  start_shepherd(sp[0]);
  JobRun r = start_anchor(spec, /*verbose=*/false, sp[1], sp[0]);
  ::close(sp[0]);
  return r;
}

Outcome finish_job(JobRun& run, const std::string& input,
                   const std::function<void()>& before_shepherd_reap) {
  Outcome o;
  std::thread writer([fd = run.stdin_w, input] {
    ::signal(SIGPIPE, SIG_IGN);
    (void)write_all(fd, input);
    ::close(fd);
  });
  run.stdin_w = -1;
  std::vector<char> buf(1 << 16);
  pollfd p[2] = {{run.stdout_r, POLLIN, 0}, {run.stderr_r, POLLIN, 0}};
  int open = 0;
  for (auto& x : p) open += x.fd >= 0 ? 1 : 0;
  while (open > 0) {
    if (::poll(p, 2, 60'000) <= 0) break;  // bounded: a hung job fails the test, not the suite
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || p[i].revents == 0) continue;
      const ssize_t n = ::read(p[i].fd, buf.data(), buf.size());
      if (n <= 0) {
        ::close(p[i].fd);
        p[i].fd = -1;
        --open;
        continue;
      }
      (i == 0 ? o.out : o.err).append(buf.data(), static_cast<std::size_t>(n));
    }
  }
  for (auto& x : p)
    if (x.fd >= 0) ::close(x.fd);
  run.stdout_r = run.stderr_r = -1;
  if (run.home_fd >= 0) ::close(std::exchange(run.home_fd, -1));
  writer.join();
  int st = 0;
  ::waitpid(run.anchor, &st, 0);
  o.code = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
  if (before_shepherd_reap) before_shepherd_reap();
  if (run.shepherd > 0) ::waitpid(run.shepherd, nullptr, 0);
  return o;
}

Outcome run_job(const JobSpec& spec, const std::string& input) {
  JobRun r = start_job(spec);
  return finish_job(r, input);
}

std::string read_until(int fd, const std::string& needle) {
  std::string got;
  char buf[4096];
  for (int waited_ms = 0; got.find(needle) == std::string::npos && waited_ms < 10'000;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      waited_ms += 100;
      continue;
    }
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/osmo-run-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) ::abort();
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace osmo::run::testing
