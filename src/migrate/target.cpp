// SPDX-License-Identifier: GPL-2.0-or-later
// The target side of a migration (see target.hpp and the timeline in source.cpp).
#include "migrate/target.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/fault.hpp"
#include "base/fd_io.hpp"
#include "base/log.hpp"
#include "ckpt/ckpt.hpp"
#include "migrate/postcopy.hpp"
#include "migrate/precopy.hpp"
#include "migrate/protocol.hpp"
#include "migrate/sealed_image.hpp"
#include "daemon/peer_link.hpp"
#include "migrate/source.hpp"
#include "run/exit_status.hpp"
#include "run/job_host.hpp"
#include "run/job_pty.hpp"
#include "run/relay.hpp"
#include "run/run_service.hpp"
#include "run/shepherd.hpp"
#include "platform/linux/process.hpp"
#include "platform/linux/socket.hpp"
#include "platform/linux/sysfs_io.hpp"
#include "run/job_spec.hpp"
#include "run/job_table.hpp"

namespace osmo::migrate {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// The source sends its stdio offsets right after the image; the image itself may take long, but
// each chunk comes promptly while the link is alive.
constexpr int kSourceSilenceMs = 30'000;
// Connect + handshake with the home daemon for the attach.
constexpr int kAttachDialMs = 5000;
// Post-copy: the source pushes pages without pause until all are sent; this long without one
// means it (or the link) is gone.
constexpr int kPostcopySilenceMs = 10'000;

double ms_since(SteadyClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
}

// This process's memory cgroup and its ancestors, nearest first, as directories: cgroup v2
// ("0::/path" under /sys/fs/cgroup) or v1 (the "memory" controller's line, under
// /sys/fs/cgroup/memory).
struct MemoryCgroup {
  std::string dir;
  bool v2 = false;
};
std::vector<MemoryCgroup> memory_cgroups() {
  std::vector<MemoryCgroup> out;
  auto self = platform::read_text_file("/proc/self/cgroup");
  if (!self.ok()) return out;
  std::string path, base;
  bool v2 = false;
  for (std::size_t at = 0; at < self->size();) {
    std::size_t nl = self->find('\n', at);
    std::string line = self->substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    const std::size_t c1 = line.find(':'), c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    if (c2 != std::string::npos) {
      const std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1);
      bool mem = false;
      for (std::size_t p = 0; p <= ctrls.size();) {
        std::size_t comma = ctrls.find(',', p);
        if (ctrls.substr(p, comma == std::string::npos ? std::string::npos : comma - p) == "memory") mem = true;
        if (comma == std::string::npos) break;
        p = comma + 1;
      }
      if (mem) {
        path = line.substr(c2 + 1), base = "/sys/fs/cgroup/memory", v2 = false;
      } else if (line.rfind("0::", 0) == 0 && base.empty()) {
        path = line.substr(3), base = "/sys/fs/cgroup", v2 = true;
      }
    }
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  if (path.empty()) return out;
  for (;;) {
    out.push_back({base + (path == "/" ? std::string() : path), v2});
    if (path == "/") break;
    std::size_t slash = path.rfind('/');
    path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
  }
  return out;
}

std::optional<std::uint64_t> read_number_after(const std::string& file, const std::string& key) {
  auto text = platform::read_text_file(file);
  if (!text.ok()) return std::nullopt;
  std::size_t k = key.empty() ? 0 : text->find(key + " ");
  if (k == std::string::npos) return std::nullopt;
  const char* p = text->c_str() + k + (key.empty() ? 0 : key.size() + 1);
  if (*p < '0' || *p > '9') return std::nullopt;  // "max": no limit
  return std::strtoull(p, nullptr, 10);
}

// The OOM killer's counts ("oom_kill" of memory.events, v1: memory.oom_control) of this
// process's cgroup and each of its ancestors, nearest first: a restore whose process vanished
// can then say that the OOM killer took it (the node's memory limit), rather than only that it
// vanished.
std::vector<std::pair<std::string, std::uint64_t>> oom_kill_counts() {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const MemoryCgroup& cg : memory_cgroups())
    if (auto n = read_number_after(cg.dir + (cg.v2 ? "/memory.events" : "/memory.oom_control"), "oom_kill"))
      out.emplace_back(cg.dir, *n);
  return out;
}

// The memory this process's cgroups still allow (the least headroom of it and its ancestors that
// have a limit), or nullopt when none has one.
std::optional<std::uint64_t> memory_headroom() {
  std::optional<std::uint64_t> least;
  for (const MemoryCgroup& cg : memory_cgroups()) {
    auto limit = read_number_after(cg.dir + (cg.v2 ? "/memory.max" : "/memory.limit_in_bytes"), "");
    auto usage = read_number_after(cg.dir + (cg.v2 ? "/memory.current" : "/memory.usage_in_bytes"), "");
    if (!limit || !usage || *limit >= (1ull << 60)) continue;  // v1 writes "no limit" as a huge number
    const std::uint64_t room = *limit > *usage ? *limit - *usage : 0;
    if (!least || room < *least) least = room;
  }
  return least;
}

// The cgroup whose OOM kill count grew since `before` (nearest first), as a phrase; empty if none.
std::string oom_killed_since(const std::vector<std::pair<std::string, std::uint64_t>>& before) {
  for (const auto& [cg, n] : oom_kill_counts())
    for (const auto& [cg0, n0] : before)
      if (cg == cg0 && n > n0)
        return fmt::format("killed by the OOM killer (memory cgroup {}: oom_kill {} -> {})", cg, n0, n);
  return {};
}

// The job's stdio as new pipes: the restored process gets the job ends in place of the pipes it
// had at the source (fds 0, 1, 2); anything else that needs a stand-in is refused.
class StdioResolver final : public ckpt::FdResolver {
 public:
  Status create() {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
      return errno_error("cannot create the job's stdio pipes");
    job_in.reset(in[0]);
    ours_in.reset(in[1]);
    ours_out.reset(out[0]);
    job_out.reset(out[1]);
    ours_err.reset(err[0]);
    job_err.reset(err[1]);
    return ok_status();
  }
  // The job's terminal (a job with a pty, ckpt terminal.cpp): a new pty here, whose master the
  // relay takes; the engine gives the slave the image's settings, window size, owner and
  // foreground group and makes it the session's controlling terminal.
  Result<int> resolve_terminal(const ckpt::TerminalImage& t) override {
    if (!has_tty) return make_error("the image has a terminal (/dev/pts/{}) but the job has none", t.index);
    if (ours_tty) return make_error("the image has a second terminal (/dev/pts/{}); a job has one", t.index);
    OSMO_ASSIGN_OR_RETURN(run::JobPty pty, run::open_job_pty(run::TtySpec{}, uid));
    OSMO_ASSIGN_OR_RETURN(job_tty, run::open_pty_slave(pty.master.get(), pty.index));
    ours_tty = std::move(pty.master);
    tty_index = pty.index;
    return job_tty.get();
  }
  Result<int> resolve(const ckpt::FdImage& recorded) override {
    switch (recorded.fd) {
      case 0: return job_in.get();
      case 1: return job_out.get();
      case 2: return job_err.get();
      default:
        return make_error("fd {} ({}) is not the job's stdio and cannot be given a stand-in here", recorded.fd,
                          recorded.path);
    }
  }
  UniqueFd job_in, job_out, job_err;     // the restored process's ends (closed here after restore)
  UniqueFd ours_in, ours_out, ours_err;  // the relay's ends
  bool has_tty = false;  // the job has a pty (JobSpec::tty)
  uid_t uid = 0;         // its user, who owns the new pty
  UniqueFd job_tty;      // the new pty's slave, given to the engine (closed here after restore)
  UniqueFd ours_tty;     // its master: the relay's
  int tty_index = -1;
};

// Ends the migration if the target daemon dies before the job runs here: the stream is shut
// down, so whatever waits on it (the image pump, the next message) fails, and the source resumes
// the job. A node whose daemon died must not end up hosting a job nobody lists.
class DaemonWatch {
 public:
  DaemonWatch(pid_t pid, std::uint64_t start, int stream_fd) : stream_fd_(stream_fd) {
    stop_.reset(::eventfd(0, EFD_CLOEXEC));
    // The daemon may already be gone, or its pid reused: the start time says which.
    auto pinned = platform::pin_process({pid, start});
    if (!pinned.ok()) {
      gone_ = true;
      ::shutdown(stream_fd_, SHUT_RDWR);
      return;
    }
    pidfd_ = std::move(pinned).value();
    thread_ = std::thread([this] {
      pollfd p[2] = {{pidfd_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      while (::poll(p, 2, -1) < 0 && errno == EINTR) {
      }
      if ((p[0].revents & POLLIN) != 0 && (p[1].revents & POLLIN) == 0) {
        gone_ = true;
        ::shutdown(stream_fd_, SHUT_RDWR);
      }
    });
  }
  ~DaemonWatch() { disarm(); }
  // The job runs here now: it no longer depends on the daemon, like any job.
  void disarm() {
    if (!thread_.joinable()) return;
    const std::uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    thread_.join();
  }
  bool daemon_gone() const { return gone_; }

 private:
  int stream_fd_;
  UniqueFd pidfd_, stop_;
  std::atomic<bool> gone_{false};
  std::thread thread_;
};

// Post-copy: the job's host, which reports a job lost with its pages as exit status 252
// (kExitNodeDied: "the node died / the stream broke mid-run"), not as the SIGKILL we gave it.
class PostcopyHost final : public run::JobHost {
 public:
  PostcopyHost(std::unique_ptr<run::JobHost> inner, std::shared_ptr<std::atomic<bool>> lost)
      : inner_(std::move(inner)), lost_(std::move(lost)) {}
  pid_t job_pid() const override { return inner_->job_pid(); }
  pid_t init_pid() const override { return inner_->init_pid(); }
  int event_fd() const override { return inner_->event_fd(); }
  std::optional<int> on_event() override {
    auto st = inner_->on_event();
    if (st && lost_->load()) return run::kExitNodeDied << 8;  // as waitpid's status of exit(252)
    return st;
  }
  void signal(int signo, bool group) override { inner_->signal(signo, group); }
  void kill() override { inner_->kill(); }

 private:
  std::unique_ptr<run::JobHost> inner_;
  std::shared_ptr<std::atomic<bool>> lost_;
};

class Incoming {
 public:
  Incoming(UniqueFd stream, IncomingOrder order, run::JobSpec spec)
      : stream_(std::move(stream)),
        order_(std::move(order)),
        spec_(std::move(spec)),
        log_(order_.node_name, "migrate"),
        ch_(stream_.get(), order_.session_key, order_.suite, /*initiator=*/false) {}

  int run() {
    DaemonWatch watch(order_.daemon_pid, order_.daemon_start, stream_.get());
    watch_ = &watch;
    auto r = receive_and_restore();
    if (!r.ok() && watch.daemon_gone()) r = make_error("the daemon of {} died ({})", order_.node_name, r.error().str());
    if (!r.ok()) {
      log_.warn("job={} not taken from {}: {}", spec_.id, order_.source, r.error().str());
      (void)ch_.send(Json{{"t", msg::kFailed}, {"error", fmt::format("{}: {}", order_.node_name, r.error().str())}});
      return 1;
    }
    return 0;
  }

 private:
  Status receive_and_restore() {
    platform::set_receive_timeout(stream_.get(), kSourceSilenceMs);
    StdioResolver stdio;
    OSMO_TRY(stdio.create());
    stdio.has_tty = spec_.tty.has_value();
    stdio.uid = spec_.uid;
    OSMO_TRY(ch_.send(Json{{"t", msg::kReady}}));

    // How the job comes (the source settles `auto`), and pre-copy's rounds into the page store
    // while the job still runs there.
    OSMO_ASSIGN_OR_RETURN(Json how, ch_.receive());
    if (how["t"] == msg::kAbort) return make_error("the source gave up: {}", how.value("error", "?"));
    if (how["t"] != msg::kMethod) return make_error("the source sent '{}' instead of the method", how["t"].get<std::string>());
    method_ = how.value("method", "");
    if (method_ != "stop" && method_ != "precopy" && method_ != "postcopy")
      return make_error("the source announced an unknown method '{}'", method_);
    // Refuse at once, with the reason, a move the node's memory limit cannot take: pre-copy's
    // page store and then the restored job each hold the job's memory (rather than being
    // OOM-killed half-way through the rounds); post-copy would be OOM-killed after the commit,
    // when the job can no longer go back.
    if (method_ == "precopy" || method_ == "postcopy") {
      const std::uint64_t mem = how.value("memory_bytes", std::uint64_t{0});
      const std::uint64_t need = method_ == "precopy" ? 2 * mem : mem;
      if (auto room = memory_headroom(); room && need > *room)
        return make_error("out of memory: {} of {:.0f} MiB needs {:.0f} MiB here, the memory cgroup allows {:.0f} MiB more",
                          method_, mem / 1048576.0, need / 1048576.0, *room / 1048576.0);
    }
    if (method_ == "precopy") {
      OSMO_ASSIGN_OR_RETURN(Json end, receive_precopy(stream_.get(), ch_.opener(), store_));
      log_.info("job={} pre-copy from {}: {} rounds, {} pages held", spec_.id, order_.source,
                end.value("rounds", 0), store_.pages());
    }

    // The image: the restore reads the sealed chunks straight from the stream into its own
    // buffers (no pump thread, no socket pair). Each chunk is verified before the restore sees a
    // byte of it; a damaged chunk, a cut link or the stream shut down by the daemon watch fails
    // the restore's read at once.
    OpeningSource source(stream_.get(), ch_.opener());
    const auto t0 = SteadyClock::now();
    ckpt::RestoreOptions ro;
    ro.resolver = &stdio;
    ro.source = &source;
    // Files are identified by path, size and mtime across nodes: the same file on two machines
    // (libc from the same package, a file on NFS seen through two mounts) has other inode
    // numbers, so an inode check would refuse every move between real machines.
    ro.verify_inode = false;
    // Post-copy: the anonymous memory comes after the job runs here (postcopy.hpp).
    if (method_ == "postcopy") ro.lazy_anonymous_pages = &lazy_;
    // Pre-copy: what the image leaves out comes from the rounds' pages.
    if (method_ == "precopy") ro.page_store = &store_;
    const auto oom_before = oom_kill_counts();
    auto pending = ckpt::restore_held(-1, ro);
    store_.clear();  // every page is in the restored processes now (or the restore failed)
    // Whichever stopped first is the cause: a stream that failed explains a restore that could
    // not read; a restore that gave up by itself (out of memory, a refused image) says why.
    if (!source.link_status().ok())
      return make_error("the image from {} did not arrive whole: {}", order_.source, source.link_status().error().str());
    if (!pending.ok()) {
      // A restored process the OOM killer took (the node's memory limit) reads as one that
      // vanished: say what happened.
      if (std::string oom = oom_killed_since(oom_before); !oom.empty())
        return make_error("out of memory: the restored job was {}; {}", oom, pending.error().str());
      return pending.take_error();
    }
    if (Status s = source.finish(); !s.ok())
      return make_error("the image from {} did not arrive whole: {}", order_.source, s.error().str());
    const std::uint64_t image_bytes = source.bytes();
    // Fault point for the tests of a failure before the commit: restored, held, not attached.
    if (fault_armed("migrate.hold_before_attach")) std::this_thread::sleep_for(std::chrono::seconds(5));
    const double restore_ms = ms_since(t0);
    stdio.job_in.reset();
    stdio.job_out.reset();
    stdio.job_err.reset();
    stdio.job_tty.reset();  // the job holds its own: the master reads EIO when the job's last one closes
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);  // this process did nothing but the move so far
    const double cpu_ms =
        (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    OSMO_TRY(ch_.send(Json{{"t", msg::kRestored}, {"ms", restore_ms}, {"bytes", image_bytes}, {"cpu_ms", cpu_ms}}));

    // The stdio state at the switch and the stdin the job has not read yet.
    OSMO_ASSIGN_OR_RETURN(Json m, ch_.receive());
    if (m["t"] == msg::kAbort) return make_error("the source gave up: {}", m.value("error", "?"));
    if (m["t"] != msg::kStdio) return make_error("the source sent '{}' instead of its stdio state", m["t"].get<std::string>());
    OSMO_ASSIGN_OR_RETURN(run::HandoffState state, handoff_from_json(m));
    std::string unread;
    wire::Chunk c;
    for (;;) {
      OSMO_TRY(ch_.opener().read(stream_.get(), &c));
      if (c.type == wire::ChunkType::kEnd) break;
      if (c.type != wire::ChunkType::kData) return make_error("protocol error: a message inside the unread stdin");
      unread.append(c.payload.begin(), c.payload.end());
    }
    if (unread.size() != m.value("stdin_unread", std::uint64_t{0}))
      return make_error("the source announced {} unread stdin bytes and sent {}", m.value("stdin_unread", 0), unread.size());
    // The input the old pty held goes into the new one now, before the job runs (echo off: it
    // was echoed where it was typed); the relay's pre-fill comes after it.
    if (!state.tty_input.empty()) {
      if (!stdio.ours_tty) return make_error("the source sent input for a terminal the image does not have");
      OSMO_TRY(run::inject_pty_input(stdio.ours_tty.get(), state.tty_input));
    }
    // Our pipes are fresh: all of it goes in front (adopt_shepherd_main pre-fills both parts).
    state.stdin_in_pipe = std::move(unread);
    state.stdin_buffered.clear();
    return attach_and_run(*pending, state, stdio);
  }

  // Attaches to home; the anchor's `attached` is the decision: only then does the restored job
  // run (commit), and only then is the source told to kill its frozen copy.
  Status attach_and_run(ckpt::PendingRestore& pending, const run::HandoffState& state, StdioResolver& stdio) {
    const ckpt::RestoredProcess& proc = pending.process();
    UniqueFd job_pidfd(::fcntl(proc.pidfd, F_DUPFD_CLOEXEC, 0));
    if (!job_pidfd) return errno_error("cannot duplicate the restored job's pidfd");
    const bool postcopy = method_ == "postcopy";
    UniqueFd kill_pidfd;  // post-copy: to kill a job whose pages are lost
    if (postcopy) {
      kill_pidfd.reset(::fcntl(proc.pidfd, F_DUPFD_CLOEXEC, 0));
      if (!kill_pidfd) return errno_error("cannot duplicate the restored job's pidfd");
    }
    run::AdoptedJob job;
    job.host = std::make_unique<run::PidfdHost>(proc.init_pid, proc.pid, std::move(job_pidfd));
    auto lost = std::make_shared<std::atomic<bool>>(false);
    if (postcopy) job.host = std::make_unique<PostcopyHost>(std::move(job.host), lost);
    job.pipes = run::JobPipes{std::move(stdio.ours_in), std::move(stdio.ours_out), std::move(stdio.ours_err)};
    if (stdio.ours_tty && spec_.tty) {
      // As at the job's start (shepherd.cpp): the streams on the pty have no pipe.
      job.pipes.tty = std::move(stdio.ours_tty);
      job.pipes.tty_stdin = spec_.tty->in;
      job.tty_index = stdio.tty_index;
      if (spec_.tty->in) job.pipes.in.reset();
      if (spec_.tty->out) job.pipes.out.reset();
      if (spec_.tty->err) job.pipes.err.reset();
    }
    job.migrations = order_.epoch;
    job.started_unix_ms = order_.started_unix_ms;
    auto dial_home = [this, &state]() -> Result<UniqueFd> {
      OSMO_ASSIGN_OR_RETURN(env::Endpoint home, env::parse_endpoint(order_.home_addr, 0));
      Json h = run::job_attach_header(spec_, state.epoch);
      h["service"] = "job.attach";
      return daemon::dial_peer(order_.node_name, order_.cluster_key, home, h, kAttachDialMs, nullptr,
                               order_.peer_encryption);
    };
    bool committed = false;
    Status outcome = ok_status();
    auto on_attached = [&]() -> Status {
      watch_->disarm();  // the job runs here from now on, whatever becomes of our daemon
      if (Status s = pending.commit(); !s.ok()) {
        outcome = s;
        return s;
      }
      committed = true;
      (void)ch_.send(Json{{"t", msg::kAttached}});
      (void)ch_.send(Json{{"t", msg::kRunning}});
      log_.info("job={} runs here (moved from {})", spec_.id, order_.source);
      if (postcopy) {
        pages_ = std::thread([this, job_pid = proc.pid, pidfd = std::move(kill_pidfd), lost]() mutable {
          serve_faults(job_pid, std::move(pidfd), *lost);
        });
        return ok_status();
      }
      stream_.reset();  // the source's part is over; the job's stream to home is the relay's
      return ok_status();
    };
    const int rc = run::adopt_shepherd_main(dial_home, spec_, std::move(job), state, on_attached);
    // The job ended (or the relay did): a post-copy still under way has nothing left to serve.
    job_over_ = true;
    if (pages_.joinable()) pages_.join();
    if (committed) return ok_status();  // the job ran here to its end (rc says how the relay ended)
    if (!outcome.ok()) return outcome;
    return make_error("home did not take the job here (relay status {}): it goes on at {}", rc, order_.source);
  }

  // Post-copy, once the job runs here: its faults are served from the source until every page
  // is in. If the source or the link fails first, the job cannot go on (its memory is gone with
  // the source): it is killed, home reads one line on the job's stderr and exit status 252.
  void serve_faults(pid_t job_pid, UniqueFd pidfd, std::atomic<bool>& lost) {
    auto r = fetch_lazy_pages(stream_.get(), ch_.sealer(), ch_.opener(), lazy_, kPostcopySilenceMs, &job_over_);
    stream_.reset();
    if (r.ok()) {
      log_.info("job={} post-copy from {} done: {} faults, {} pages asked for, {} installed, {:.1f} ms{}", spec_.id,
                order_.source, (*r)["faults"].get<std::uint64_t>(), (*r)["requested"].get<std::uint64_t>(),
                (*r)["installed"].get<std::uint64_t>(), (*r)["ms"].get<double>(),
                (*r)["ended"].get<bool>() ? " (the job ended first)" : "");
      return;
    }
    if (job_over_) return;  // the job had ended anyway: nothing was lost
    const std::string why = fmt::format("osmo: job {} lost: its memory could not come from {} after it moved to {} "
                                        "(post-copy: {}); killed",
                                        spec_.id, order_.source, order_.node_name, r.error().str());
    log_.error("{}", why);
    lost = true;
    // The line reaches home through the job's own stderr pipe, which the relay carries.
    UniqueFd err(::open(fmt::format("/proc/{}/fd/2", job_pid).c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK));
    if (err) (void)write_all(err.get(), why + "\n");
    (void)::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  }

  UniqueFd stream_;
  IncomingOrder order_;
  run::JobSpec spec_;
  Logger log_;
  SealedChannel ch_;
  DaemonWatch* watch_ = nullptr;
  std::string method_;           // as the source announced it (it settles auto)
  PageStoreMemory store_;        // pre-copy: the pages sent while the job ran at the source
  ckpt::LazyPages lazy_;         // post-copy: the restored process's missing memory
  std::thread pages_;            // post-copy: serve_faults
  std::atomic<bool> job_over_{false};
};

}  // namespace

int incoming_main(int stream_fd, int order_fd) {
  ::signal(SIGPIPE, SIG_IGN);
  UniqueFd stream(stream_fd);
  std::string text;
  {
    UniqueFd f(order_fd);
    (void)read_to_end(f.get(), &text);  // a read error leaves a partial order, refused as not JSON
  }
  auto j = Json::parse(text, nullptr, false);
  auto order = j.is_discarded() ? Result<IncomingOrder>(make_error("the incoming order is not JSON"))
                                : incoming_order_from_json(j);
  if (!order.ok()) return 1;  // the source sees the stream close and resumes the job
  auto spec = run::job_spec_from_json(order->spec);
  if (!spec.ok()) return 1;
  return Incoming(std::move(stream), std::move(order).value(), std::move(spec).value()).run();
}

}  // namespace osmo::migrate
