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

#include "base/fd_io.hpp"
#include "base/progress_line.hpp"
#include "base/unique_fd.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/image.hpp"
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

// "--fd 251=PATH|null for fd 251 (pipe pipe:[1234], write-only)" for each fd above 2.
std::string restore_options_needed(const std::vector<ckpt::FdImage>& stand_ins) {
  std::string out;
  for (const ckpt::FdImage& f : stand_ins) {
    if (f.fd <= 2) continue;
    if (!out.empty()) out += ", ";
    out += fmt::format("--fd {}=PATH|null for {}", f.fd, ckpt::describe_fd(f));
  }
  return out;
}

// The image's fd, with every byte counted on the progress line; the first byte ends the freeze.
class ProgressSink final : public ckpt::ImageSink {
 public:
  ProgressSink(int fd, ProgressLine& line) : inner_(fd), line_(line) {}
  Status write(const iovec* iov, std::size_t n) override {
    if (!writing_) {
      line_.phase("writing image");
      writing_ = true;
    }
    OSMO_TRY(inner_.write(iov, n));
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < n; i++) bytes += iov[i].iov_len;
    line_.add_bytes(bytes);
    return ok_status();
  }

 private:
  ckpt::FdSink inner_;
  ProgressLine& line_;
  bool writing_ = false;
};

// A pipe or stdin read with every byte counted. A regular file is left to the reader itself,
// which maps it (faster than reads); its progress is the elapsed time (ProgressTicker).
class ProgressSource final : public ckpt::ImageSource {
 public:
  ProgressSource(int fd, ProgressLine& line) : fd_(fd), line_(line) {}
  Result<std::size_t> read(void* p, std::size_t n) override {
    const IoResult r = read_full(fd_, p, n);
    if (!r.ok()) return Error{r.error, "read failed"};
    line_.add_bytes(r.bytes);
    return r.bytes;
  }

 private:
  int fd_;
  ProgressLine& line_;
};

bool regular_file(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

void add_ckpt_commands(CLI::App& app, GlobalOptions& global, int* exit_code) {
  // ---- checkpoint ----
  auto* ck = app.add_subcommand("checkpoint", "Checkpoint a running process into an image stream");
  static int pid = 0;
  static std::string out;
  static bool leave_running = false, kill_after = false, compress = false, list_faults = false;
  static bool stand_ins_ok = false, tree = false;
  ck->add_option("pid", pid, "Process to checkpoint");
  ck->add_flag("--tree", tree, "Checkpoint the process with all its descendants, as one unit (restored as a tree)");
  ck->add_option("-o,--output", out, "Image file, or - for stdout");
  auto* lr = ck->add_flag("--leave-running", leave_running, "Resume the process after the dump (default)");
  auto* kl = ck->add_flag("--kill", kill_after, "Kill the process once a complete image is written (migration)")
                 ->excludes(lr);
  ck->add_flag("--stand-ins-ok", stand_ins_ok,
               "With --kill: accept a process whose restore will need --fd stand-ins (pipes, ttys, "
               "sockets above fd 2) and print the options it will need")
      ->needs(kl);
  ck->add_flag("--compress", compress, "LZ4-compress page and blob sections");
  ck->add_flag("--list-faults", list_faults, "List the fault points usable in OSMO_FAULT and exit");
  ck->callback([exit_code, &global] {
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
    ckpt::CheckpointOptions opts;
    opts.after = kill_after ? ckpt::AfterDump::kKill : ckpt::AfterDump::kResume;
    opts.compress = compress;
    opts.scope = tree ? ckpt::TreeScope::kTree : ckpt::TreeScope::kProcess;
    // A checkpoint that kills must leave an image that a plain `osmo restore` brings back, or say
    // first what that restore will need: refused here, before the process (or the output file)
    // is touched; the engine checks again once the process is stopped.
    opts.refuse_stand_ins_beyond_stdio = kill_after && !stand_ins_ok;
    // (A tree's pipes between its processes need none: the engine checks the tree once frozen.)
    if (opts.refuse_stand_ins_beyond_stdio && !tree) {
      auto need = ckpt::stand_ins_needed(pid, opts);
      if (need.ok() && !restore_options_needed(*need).empty()) {
        *exit_code = fail("checkpoint", fmt::format("cannot checkpoint pid {} with --kill: `osmo restore` could not "
                                                    "bring it back by itself: it needs {}; checkpoint with "
                                                    "--kill --stand-ins-ok to accept that",
                                                    pid, restore_options_needed(*need)));
        return;
      }
      // Any other refusal is checkpoint()'s to report, in its own words.
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
    ckpt::CheckpointStats stats;
    Status s = ok_status();
    {
      ProgressLine progress(fmt::format("osmo checkpoint: pid {}", pid), progress_wanted(global.quiet));
      ProgressSink sink(fd, progress);
      if (progress.enabled()) opts.sink = &sink;
      progress.phase("freezing");
      ProgressTicker ticker(progress);  // a long freeze (a big tree) still shows time passing
      s = ckpt::checkpoint(pid, fd, opts, &stats);
    }
    if (!s.ok()) {
      if (file) ::unlink(out.c_str());  // an incomplete image must not be mistaken for one
      *exit_code = fail("checkpoint", s.error().str());
      return;
    }
    std::fprintf(stderr, "osmo checkpoint: pid %d: %llu pages carried (%llu present), %.1f MiB image, frozen %.1f ms\n",
                 pid, static_cast<unsigned long long>(stats.pages_written),
                 static_cast<unsigned long long>(stats.pages_scanned), static_cast<double>(stats.image_bytes) / (1 << 20),
                 stats.freeze_ms);
    if (std::string need = restore_options_needed(stats.stand_ins); !need.empty())
      std::fprintf(stderr, "osmo checkpoint: pid %d: restoring this image needs %s\n", pid, need.c_str());
    *exit_code = 0;
  });

  // ---- restore ----
  auto* rs = app.add_subcommand("restore", "Restore a process from an image stream");
  static std::string in;
  static bool detach = false;
  static std::string netns;
  static std::vector<std::string> fd_specs;
  rs->add_option("file", in, "Image file, or - for stdin")->required();
  rs->add_flag("--detach", detach, "Print the restored pid and exit, leaving it running");
  rs->add_option("--netns", netns, "Network namespace (path) for the restored process");
  rs->add_option("--fd", fd_specs,
                 "Stand-in for a recorded pipe/tty/socket: N=PATH (opened with the fd's access mode; "
                 "created and appended to when writable) or N=null (/dev/null); repeatable")
      ->allow_extra_args(false);
  rs->callback([exit_code, &global] {
    std::vector<ckpt::StandInSpec> specs;
    for (const std::string& text : fd_specs) {
      auto spec = ckpt::parse_stand_in_spec(text);
      if (!spec.ok()) {
        *exit_code = fail("restore", spec.error().str());
        return;
      }
      specs.push_back(*spec);
    }
    auto resolver = ckpt::StandInResolver::make(std::move(specs));
    if (!resolver.ok()) {
      *exit_code = fail("restore", resolver.error().str());
      return;
    }
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
    opts.resolver = &*resolver;
    Result<ckpt::RestoredProcess> r = make_error("not restored");
    {
      ProgressLine progress(fmt::format("osmo restore: {}", in == "-" ? "stdin" : in), progress_wanted(global.quiet));
      ProgressSource counted(fd, progress);
      if (progress.enabled() && !regular_file(fd)) opts.source = &counted;
      progress.phase("restoring");
      ProgressTicker ticker(progress);
      r = ckpt::restore(fd, opts);
    }
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
