// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo checkpoint`, `osmo restore`, `osmo image show`: thin command-line wrappers around the
// engine (ckpt.hpp). Refusals and failures print one line "osmo <cmd>: <reason>" and exit 1.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "base/unique_fd.hpp"
#include "ckpt/ckpt.hpp"
#include "cli/commands.hpp"

namespace osmo::cli {
namespace {

volatile sig_atomic_t g_restored_pid = 0;
void forward_signal(int sig) {
  if (g_restored_pid > 0) ::kill(g_restored_pid, sig);
}

int fail(const char* cmd, const std::string& msg) {
  std::fprintf(stderr, "osmo %s: %s\n", cmd, msg.c_str());
  return 1;
}

}  // namespace

void add_ckpt_commands(CLI::App& app, GlobalOptions&, int* exit_code) {
  // ---- checkpoint ----
  auto* ck = app.add_subcommand("checkpoint", "Checkpoint a running process into an image stream");
  static int pid = 0;
  static std::string out;
  static bool leave_running = false, kill_after = false, compress = false, list_faults = false;
  ck->add_option("pid", pid, "Process to checkpoint");
  ck->add_option("-o,--output", out, "Image file, or - for stdout");
  auto* lr = ck->add_flag("--leave-running", leave_running, "Resume the process after the dump (default)");
  ck->add_flag("--kill", kill_after, "Kill the process once a complete image is written (migration)")->excludes(lr);
  ck->add_flag("--compress", compress, "LZ4-compress page and blob sections");
  ck->add_flag("--list-faults", list_faults, "List the fault points usable in OSMO_FAULT and exit");
  ck->callback([exit_code] {
    if (list_faults) {
      for (auto& [name, what] : ckpt::fault_points()) std::printf("%-24s %s\n", name.c_str(), what.c_str());
      *exit_code = 0;
      return;
    }
    if (pid <= 0) {
      *exit_code = fail("checkpoint", "a PID is required");
      return;
    }
    if (out.empty()) {
      *exit_code = fail("checkpoint", "-o FILE (or -o - for stdout) is required");
      return;
    }
    UniqueFd file;
    int fd = STDOUT_FILENO;
    if (out != "-") {
      file.reset(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!file) {
        *exit_code = fail("checkpoint", fmt::format("cannot checkpoint pid {}: cannot create {}: {}", pid, out,
                                                     std::strerror(errno)));
        return;
      }
      fd = file.get();
    }
    ckpt::CheckpointOptions opts;
    opts.after = kill_after ? ckpt::AfterDump::kKill : ckpt::AfterDump::kResume;
    opts.compress = compress;
    ckpt::CheckpointStats stats;
    Status s = ckpt::checkpoint(pid, fd, opts, &stats);
    if (!s.ok()) {
      if (file) ::unlink(out.c_str());  // an incomplete image must not be mistaken for one
      *exit_code = fail("checkpoint", s.error().str());
      return;
    }
    std::fprintf(stderr, "osmo checkpoint: pid %d: %llu pages carried (%llu present), %.1f MiB image, frozen %.1f ms\n",
                 pid, static_cast<unsigned long long>(stats.pages_written),
                 static_cast<unsigned long long>(stats.pages_scanned), static_cast<double>(stats.image_bytes) / (1 << 20),
                 stats.freeze_ms);
    *exit_code = 0;
  });

  // ---- restore ----
  auto* rs = app.add_subcommand("restore", "Restore a process from an image stream");
  static std::string in;
  static bool detach = false;
  static std::string netns;
  rs->add_option("file", in, "Image file, or - for stdin")->required();
  rs->add_flag("--detach", detach, "Print the restored pid and exit, leaving it running");
  rs->add_option("--netns", netns, "Network namespace (path) for the restored process");
  rs->callback([exit_code] {
    UniqueFd file;
    int fd = STDIN_FILENO;
    if (in != "-") {
      file.reset(::open(in.c_str(), O_RDONLY | O_CLOEXEC));
      if (!file) {
        *exit_code = fail("restore", fmt::format("cannot open {}: {}", in, std::strerror(errno)));
        return;
      }
      fd = file.get();
    }
    ckpt::RestoreOptions opts;
    opts.netns_path = netns;
    auto r = ckpt::restore(fd, opts);
    if (!r.ok()) {
      *exit_code = fail("restore", r.error().str());
      return;
    }
    file.reset();
    ::close(r->pidfd);
    if (detach) {
      std::printf("%d\n", r->pid);
      std::fflush(stdout);
      *exit_code = 0;
      return;
    }
    g_restored_pid = r->pid;
    struct sigaction sa {};
    sa.sa_handler = forward_signal;
    sa.sa_flags = SA_RESTART;
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) ::sigaction(s, &sa, nullptr);
    int st = 0;
    while (::waitpid(r->init_pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st)) *exit_code = WEXITSTATUS(st);
    else if (WIFSIGNALED(st)) *exit_code = 128 + WTERMSIG(st);
    else *exit_code = 1;
  });

  // ---- image show ----
  auto* img = app.add_subcommand("image", "Inspect checkpoint images");
  img->require_subcommand(1);
  auto* show = img->add_subcommand("show", "Decode an image for humans (verifies every checksum)");
  static std::string show_file;
  static bool json = false;
  show->add_option("file", show_file, "Image file, or - for stdin")->required();
  show->add_flag("--json", json, "Machine-readable output");
  show->callback([exit_code] {
    UniqueFd file;
    int fd = STDIN_FILENO;
    if (show_file != "-") {
      file.reset(::open(show_file.c_str(), O_RDONLY | O_CLOEXEC));
      if (!file) {
        *exit_code = fail("image show", fmt::format("cannot open {}: {}", show_file, std::strerror(errno)));
        return;
      }
      fd = file.get();
    }
    auto j = ckpt::show_image(fd);
    if (!j.ok()) {
      *exit_code = fail("image show", j.error().str());
      return;
    }
    if (json) std::cout << j->dump(2) << "\n";
    else std::cout << ckpt::render_image_text(*j);
    *exit_code = 0;
  });
}

}  // namespace osmo::cli
