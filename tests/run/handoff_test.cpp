// SPDX-License-Identifier: GPL-2.0-or-later
// Handing a job's relay stream from one shepherd to another (docs/run.md, "Moving a job"), without
// the checkpoint engine: a "node" process starts a real job and relays it (the source), the test
// drives a move through the shepherd's control endpoint and the migration handler, and after
// finish_handoff the same node process adopts the very same running processes and pipes as a new
// shepherd (the target) that attaches to the anchor through a fake home routing (the test plays
// the home daemon on the anchor's control connection). Also the anchor's arbitration: resume wins,
// attach wins (a fake target played by the test), a broken old stream with and without an attach
// in time, stale epochs and wrong offsets. Needs root (namespaces); skips otherwise, except under
// CI=true.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "platform/linux/proc_files.hpp"
#include "relay_harness.hpp"
#include "run/exit_status.hpp"
#include "run/fd_util.hpp"
#include "run/frame.hpp"
#include "run/handoff_frames.hpp"
#include "run/job_table.hpp"
#include "run/relay.hpp"
#include "run/shepherd.hpp"

namespace osmo::run::testing {
namespace {

using nlohmann::json;

// ---- the node process -------------------------------------------------------------------------

std::mutex g_mu;
HandoffState g_state;        // what begin_handoff returned (the node's "target" continues from it)
pid_t g_job_pid = -1;
std::string g_dump_path;     // where the handler writes the unconsumed stdin
std::atomic<int> g_busy{0};  // handler commands between their call and their reply

char job_state(pid_t pid) {
  char path[64], buf[512];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  const std::string_view t = platform::read_small_file(path, buf, sizeof buf);
  const auto close = t.rfind(')');
  return close == std::string_view::npos || close + 2 >= t.size() ? '?' : t[close + 2];
}

// The job's freeze, as far as a test without the engine can make one: SIGSTOP to its process
// group, then wait until its main process is stopped.
void freeze_job() {
  ::kill(-g_job_pid, SIGSTOP);
  for (int i = 0; i < 500 && job_state(g_job_pid) != 'T'; ++i) ::usleep(2000);
  ::usleep(20'000);  // the rest of its group
}

void thaw_job() { ::kill(-g_job_pid, SIGCONT); }

void reply(int conn, const json& j) {
  const std::string s = j.dump();
  (void)::send(conn, s.data(), s.size(), MSG_NOSIGNAL);
}

// The migration code of these tests: commands from the test on the control connection.
void handler_thread(UniqueFd conn, std::shared_ptr<MigrationControl> ctl) {
  for (;;) {
    char buf[256];
    const ssize_t n = ::recv(conn.get(), buf, sizeof buf, 0);
    if (n <= 0) return;
    const std::string cmd(buf, static_cast<std::size_t>(n));
    ++g_busy;
    struct Done {
      ~Done() { --g_busy; }
    } done;
    if (cmd == "begin") {
      freeze_job();
      auto st = ctl->begin_handoff(20'000);
      if (!st.ok()) {
        reply(conn.get(), {{"error", st.error().str()}});
        continue;
      }
      {
        std::lock_guard lk(g_mu);
        g_state = *st;
      }
      std::ofstream(g_dump_path, std::ios::binary) << st->unconsumed_stdin();
      reply(conn.get(), {{"epoch", st->epoch},
                         {"stdout", st->at.stdout_bytes},
                         {"stderr", st->at.stderr_bytes},
                         {"stdin", st->at.stdin_bytes},
                         {"signals", st->at.signals},
                         {"in_pipe", st->stdin_in_pipe.size()},
                         {"buffered", st->stdin_buffered.size()},
                         {"held", st->held_signals.size()}});
    } else if (cmd == "finish") {
      auto s = ctl->finish_handoff();
      reply(conn.get(), s.ok() ? json{{"ok", true}} : json{{"error", s.error().str()}});
    } else if (cmd == "cancel") {
      auto r = ctl->cancel_handoff(20'000);
      if (r.ok() && *r) thaw_job();
      reply(conn.get(), r.ok() ? json{{"resumed", *r}} : json{{"error", r.error().str()}});
    } else if (cmd == "die") {
      ::_exit(9);  // the source node dies (its job with it: init's parent-death signal)
    }
  }
}

// The node: starts the job, relays it as the source; after a committed move adopts the same
// processes and pipes as the target, attaching through `home_fd`. Exit status: the adopted
// shepherd's, or 0 (done), 10 (rejected), 11 (anchor gone).
[[noreturn]] void node_main(JobSpec spec, int stream_fd, int home_fd) {
  set_migration_handler([](UniqueFd conn, std::shared_ptr<MigrationControl> ctl) {
    std::thread(handler_thread, std::move(conn), std::move(ctl)).detach();
  });
  ::signal(SIGPIPE, SIG_IGN);
  auto launched = launch_job(spec, std::nullopt);
  if (!launched.ok() || launched->exec_failed_status) ::_exit(90);
  g_job_pid = launched->host->job_pid();
  Logger log("source", "shepherd");
  JobPipes pipes;
  {
    Relay a(UniqueFd(stream_fd), std::move(launched->pipes), launched->host.get(), spec.id, log);
    a.queue_frame(FrameType::kStarted, json{{"id", spec.id}, {"node", spec.node}, {"pid", g_job_pid}}.dump());
    a.queue_frame(FrameType::kCredit, u32_payload(kStdinWindowBytes).view());
    if (!a.open_control_endpoint(control_endpoint_path(spec.state_dir, spec.id)).ok()) ::_exit(91);
    const Relay::Phase end = a.run();
    if (end == Relay::Phase::kDone) {
      a.linger();
      ::_exit(0);
    }
    if (end != Relay::Phase::kDetached) {
      // Let the handler answer the step that ended the relay before the process goes.
      for (int i = 0; i < 200 && g_busy > 0; ++i) ::usleep(10'000);
      launched->host->kill();
      ::_exit(end == Relay::Phase::kRejected ? 10 : 11);
    }
    pipes = a.take_pipes();
  }
  HandoffState st;
  {
    std::lock_guard lk(g_mu);
    st = g_state;
  }
  st.stdin_in_pipe.clear();  // the job keeps its pipe here, and the pipe still holds those bytes
  spec.node = "target";
  AdoptedJob job;
  job.host = std::move(launched->host);
  job.pipes = std::move(pipes);
  job.migrations = 1;
  const int rc = adopt_shepherd_main(
      [&]() -> Result<UniqueFd> {
        UniqueFd s = route_attach(home_fd, spec.id, st.epoch, "target");
        if (!s.valid()) return make_error("routing the attach failed");
        return s;
      },
      spec, std::move(job), st, [] {
        thaw_job();
        return ok_status();
      });
  ::_exit(rc);
}

// ---- the test's side --------------------------------------------------------------------------

class RunHandoff : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") FAIL() << "needs root, and CI must run it";
      GTEST_SKIP() << "needs root (PID/mount/time namespaces); run as root or in CI";
    }
  }
  void TearDown() override {
    if (node_ > 0) {
      int st = 0;
      if (::waitpid(node_, &st, WNOHANG) == node_)
        ADD_FAILURE() << "the node process ended early, wait status " << st;
      else
        ::kill(node_, SIGKILL);
      ::waitpid(node_, nullptr, 0);
    }
    if (collector_.joinable()) {  // a failed assertion left the run going
      ::kill(run_.anchor, SIGKILL);
      collector_.join();
      ::waitpid(run_.anchor, nullptr, 0);
    }
  }

  JobSpec spec(std::vector<std::string> argv) {
    JobSpec s = make_spec(std::move(argv), dir_.path);
    s.node = "source";
    return s;
  }

  // Starts the anchor and the node process.
  void start(const JobSpec& s, int handoff_wait_ms = kHandoffWaitMs) {
    spec_ = s;
    int sp[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    AnchorOptions opt;
    opt.verbose = true;
    opt.handoff_wait_ms = handoff_wait_ms;
    run_ = start_anchor_with_home(s, sp[1], sp[0], opt);
    g_dump_path = dir_.path + "/unconsumed";
    node_ = ::fork();
    if (node_ == 0) {
      for (int fd : {run_.stdin_w, run_.stdout_r, run_.stderr_r}) ::close(fd);
      node_main(s, sp[0], run_.home_fd);
    }
    ::close(sp[0]);
    collector_ = std::thread([this] { collect(); });
  }

  // Everything the anchor writes, until EOF on both.
  void collect() {
    pollfd p[2] = {{run_.stdout_r, POLLIN, 0}, {run_.stderr_r, POLLIN, 0}};
    std::vector<char> buf(1 << 16);
    int open = 2;
    while (open > 0) {
      if (::poll(p, 2, 120'000) <= 0) break;
      for (int i = 0; i < 2; ++i) {
        if (p[i].fd < 0 || p[i].revents == 0) continue;
        const ssize_t n = ::read(p[i].fd, buf.data(), buf.size());
        if (n <= 0) {
          p[i].fd = -1;
          --open;
          continue;
        }
        std::lock_guard lk(out_mu_);
        (i == 0 ? out_ : err_).append(buf.data(), static_cast<std::size_t>(n));
      }
    }
  }

  std::string out() {
    std::lock_guard lk(out_mu_);
    return out_;
  }
  std::string err() {
    std::lock_guard lk(out_mu_);
    return err_;
  }
  bool wait_output(const std::string& needle, int ms = 20'000) {
    for (int i = 0; i < ms / 10; ++i) {
      if (out().find(needle) != std::string::npos) return true;
      ::usleep(10'000);
    }
    return false;
  }

  // The shepherd's control endpoint, and one command on it.
  void connect_control() {
    ctl_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::string path = control_endpoint_path(spec_.state_dir, spec_.id);
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    for (int i = 0; i < 500; ++i) {
      if (::connect(ctl_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return;
      ::usleep(10'000);
    }
    FAIL() << "cannot connect to " << path << ": " << std::strerror(errno);
  }
  void send_only(const std::string& cmd) { (void)::send(ctl_.get(), cmd.data(), cmd.size(), MSG_NOSIGNAL); }
  json command(const std::string& cmd) {
    if (::send(ctl_.get(), cmd.data(), cmd.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(cmd.size()))
      return json{{"error", "send failed"}};
    pollfd p{ctl_.get(), POLLIN, 0};
    if (::poll(&p, 1, 30'000) != 1) return json{{"error", "no reply"}};
    char buf[4096];
    const ssize_t n = ::recv(ctl_.get(), buf, sizeof buf, 0);
    if (n <= 0) return json{{"error", "connection closed"}};
    return json::parse(std::string(buf, static_cast<std::size_t>(n)), nullptr, false);
  }

  // Closes stdin after `input`, waits for both processes. Returns the anchor's exit status.
  int finish(const std::string& input = "") {
    std::thread writer([fd = run_.stdin_w, input] {
      (void)write_all(fd, input);
      ::close(fd);
    });
    run_.stdin_w = -1;
    writer.join();
    collector_.join();
    ::close(run_.stdout_r);
    ::close(run_.stderr_r);
    if (run_.home_fd >= 0) ::close(std::exchange(run_.home_fd, -1));
    int st = 0;
    ::waitpid(run_.anchor, &st, 0);
    int nst = 0;
    ::waitpid(node_, &nst, 0);
    node_status_ = nst;
    node_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
  }

  TempDir dir_;
  JobSpec spec_;
  JobRun run_;
  pid_t node_ = -1;
  int node_status_ = 0;
  std::thread collector_;
  std::mutex out_mu_;
  std::string out_, err_;
  UniqueFd ctl_;
};

// A fake target played by the test: writes `attach` on a routed stream and reads the answer.
struct FakeTarget {
  UniqueFd fd;
  FrameType answer{};
  std::string payload;

  bool attach(int home_fd, const std::string& id, std::uint32_t epoch, const StreamOffsets& at) {
    fd = route_attach(home_fd, id, epoch, "faketarget");
    std::vector<char> f;
    append_frame(f, FrameType::kAttach, encode(AttachMsg{id, epoch, "faketarget", at}));
    if (!write_all(fd.get(), std::string_view(f.data(), f.size())).ok()) return false;
    return read_frame();
  }
  bool read_frame() {
    std::string got;
    for (;;) {
      if (got.size() >= kFrameHeaderBytes) {
        auto h = decode_header(got.data());
        if (!h.ok()) return false;
        if (got.size() >= kFrameHeaderBytes + h->length) {
          answer = h->type;
          payload = got.substr(kFrameHeaderBytes, h->length);
          return true;
        }
      }
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 10'000) != 1) return false;
      char buf[4096];
      const ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n <= 0) return false;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  void send_exit(std::uint32_t code) {
    std::vector<char> f;
    append_frame(f, FrameType::kStdoutEof);
    append_frame(f, FrameType::kStderrEof);
    append_u32_pair_frame(f, FrameType::kExit, kExitCode, code);
    (void)write_all(fd.get(), std::string_view(f.data(), f.size()));
  }
};

StreamOffsets offsets_of(const json& j) {
  return StreamOffsets{j.value("stdout", 0ull), j.value("stderr", 0ull), j.value("stdin", 0ull),
                       j.value("signals", 0ull)};
}

std::string counter_text(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::to_string(i) + "\n";
  return s;
}

// ---- moves ------------------------------------------------------------------------------------

TEST_F(RunHandoff, CounterMovesWithoutLosingOrRepeatingOutput) {
  start(spec({"python3", "-u", "-c",
              "import time\nfor i in range(4000):\n  print(i)\n  time.sleep(0.0003)\nraise SystemExit(5)"}));
  ASSERT_TRUE(wait_output("700\n")) << err();
  connect_control();
  json st = command("begin");
  ASSERT_FALSE(st.contains("error")) << st.dump();
  EXPECT_GE(st["stdout"].get<std::uint64_t>(), counter_text(701).size());
  EXPECT_EQ(st["epoch"], 1);
  // Output stops while the job is handed off.
  const std::size_t frozen_at = out().size();
  ::usleep(200'000);
  EXPECT_EQ(out().size(), frozen_at);
  EXPECT_EQ(out().size(), st["stdout"].get<std::size_t>());
  json fin = command("finish");
  EXPECT_EQ(fin.value("ok", false), true) << fin.dump();
  const int code = finish();
  EXPECT_EQ(code, 5) << err();
  EXPECT_TRUE(out() == counter_text(4000)) << "output differs: " << out().size() << " bytes, expected "
                                           << counter_text(4000).size();
  EXPECT_NE(err().find("moved from node source to node target"), std::string::npos) << err();
  EXPECT_TRUE(WIFEXITED(node_status_) && WEXITSTATUS(node_status_) == 0) << node_status_;
}

TEST_F(RunHandoff, ATerminalJobMovesWithoutLosingOrRepeatingOutput) {
  // Its stdout is a pty: what it wrote to the terminal before the freeze is drained into the old
  // stream before `handoff` (tty frames), the rest comes from the adopting shepherd, none twice.
  JobSpec s = spec({"python3", "-u", "-c",
                    "import time\nfor i in range(3000):\n  print(i)\n  time.sleep(0.0003)\nraise SystemExit(5)"});
  s.tty = TtySpec{};
  s.tty->out = true;
  start(s);
  ASSERT_TRUE(wait_output("700\r\n")) << err();
  connect_control();
  json st = command("begin");
  ASSERT_FALSE(st.contains("error")) << st.dump();
  const std::size_t frozen_at = out().size();
  ::usleep(200'000);
  EXPECT_EQ(out().size(), frozen_at) << "terminal output after the handoff";
  json fin = command("finish");
  EXPECT_EQ(fin.value("ok", false), true) << fin.dump();
  EXPECT_EQ(finish(), 5) << err();
  std::string want;
  for (int i = 0; i < 3000; ++i) want += std::to_string(i) + "\r\n";
  EXPECT_TRUE(out() == want) << "terminal output differs: " << out().size() << " bytes, expected " << want.size();
  EXPECT_NE(err().find("moved from node source to node target"), std::string::npos) << err();
}

TEST_F(RunHandoff, EchoJobGetsEveryStdinLineOnceAndHeldSignalsAfterTheMove) {
  // Echoes each line; SIGUSR1 prints a mark; EOF exits 3.
  start(spec({"python3", "-u", "-c",
              "import signal, sys\n"
              "signal.signal(signal.SIGUSR1, lambda *a: print('usr1', flush=True))\n"
              "for line in sys.stdin:\n  print('echo ' + line, end='', flush=True)\n"
              "raise SystemExit(3)"}));
  std::atomic<bool> stop{false};
  std::string sent;
  std::thread writer([&] {
    for (int i = 0; i < 3000 && !stop; ++i) {
      const std::string line = "line " + std::to_string(i) + "\n";
      if (!write_all(run_.stdin_w, line).ok()) break;
      sent += line;
      ::usleep(300);
    }
  });
  ASSERT_TRUE(wait_output("echo line 300\n")) << err();
  connect_control();
  json st = command("begin");
  ASSERT_FALSE(st.contains("error")) << st.dump();
  // A signal typed while the job is away: the anchor holds it. (One: two of a kind could merge
  // while the job is still stopped.)
  ::kill(run_.anchor, SIGUSR1);
  ::usleep(100'000);
  json fin = command("finish");
  EXPECT_EQ(fin.value("ok", false), true) << fin.dump();
  writer.join();
  const int code = finish();
  EXPECT_EQ(code, 3) << err();
  std::string echoes, o = out();
  int usr1 = 0;
  for (std::size_t at = 0; at < o.size();) {
    const auto nl = o.find('\n', at);
    const std::string line = o.substr(at, nl - at + 1);
    if (line == "usr1\n")
      ++usr1;
    else
      echoes += line.substr(5);  // "echo "
    at = nl + 1;
  }
  EXPECT_EQ(usr1, 1);
  EXPECT_TRUE(echoes == sent) << "echoed " << echoes.size() << " bytes of " << sent.size();
  auto jobs = list_jobs(dir_.path);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
}

TEST_F(RunHandoff, BinaryCatMovesMidStream) {
  std::string data(48 << 20, '\0');
  std::mt19937_64 rng(7);
  for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
    const auto v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  start(spec({"cat"}));
  std::thread writer([&] {
    (void)write_all(run_.stdin_w, data);
    ::close(run_.stdin_w);
  });
  for (int i = 0; i < 2000 && out().size() < (8u << 20); ++i) ::usleep(5000);
  connect_control();
  json st = command("begin");
  ASSERT_FALSE(st.contains("error")) << st.dump();
  // The record shows the move once it is done.
  json fin = command("finish");
  EXPECT_EQ(fin.value("ok", false), true) << fin.dump();
  writer.join();
  run_.stdin_w = -1;
  collector_.join();
  int st_anchor = 0;
  ::waitpid(run_.anchor, &st_anchor, 0);
  ::waitpid(node_, &node_status_, 0);
  node_ = -1;
  EXPECT_TRUE(WIFEXITED(st_anchor) && WEXITSTATUS(st_anchor) == 0) << st_anchor << " " << err();
  ASSERT_EQ(out().size(), data.size());
  EXPECT_TRUE(out() == data) << "stdout differs from stdin";
}

TEST_F(RunHandoff, RecordShowsTheNewNodeAndTheMigrationCount) {
  start(spec({"sh", "-c", "echo ready; read x; echo after-$x"}));
  ASSERT_TRUE(wait_output("ready\n"));
  connect_control();
  ASSERT_FALSE(command("begin").contains("error"));
  ASSERT_EQ(command("finish").value("ok", false), true);
  std::vector<JobInfo> jobs;
  for (int i = 0; i < 500; ++i) {
    auto j = list_jobs(dir_.path);
    if (j.ok() && j->size() == 1 && j->at(0).rec.node == "target") {
      jobs = *j;
      break;
    }
    ::usleep(10'000);
  }
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].rec.migrations, 1);
  EXPECT_EQ(jobs[0].rec.id, spec_.id);
  EXPECT_EQ(finish("go\n"), 0);
  EXPECT_EQ(out(), "ready\nafter-go\n");
}

TEST_F(RunHandoff, KillThroughTheAnchorDuringAMoveReachesTheJobWhereItLands) {
  start(spec({"sh", "-c", "echo ready; exec sleep 60"}));
  ASSERT_TRUE(wait_output("ready\n"));
  connect_control();
  ASSERT_FALSE(command("begin").contains("error"));
  // `osmo kill -TERM` as the home daemon routes it (anchor_registry.hpp): held by the anchor.
  const std::string line = json{{"signal", SIGTERM}}.dump() + "\n";
  ASSERT_TRUE(write_all(run_.home_fd, line).ok());
  ::usleep(100'000);
  ASSERT_EQ(command("finish").value("ok", false), true);
  EXPECT_EQ(finish(), 128 + SIGTERM) << err();
  EXPECT_TRUE(WIFEXITED(node_status_) && WEXITSTATUS(node_status_) == 0) << node_status_;
}

// ---- a cancelled move --------------------------------------------------------------------------

TEST_F(RunHandoff, ResumeKeepsTheUnreadStdinInOrder) {
  // 3 MiB of stdin while the job sleeps: 1 MiB waits in its pipe, the rest in the shepherd.
  std::string input(3 << 20, '\0');
  std::mt19937_64 rng(11);
  for (std::size_t i = 0; i + 8 <= input.size(); i += 8) {
    const auto v = rng();
    std::memcpy(input.data() + i, &v, 8);
  }
  start(spec({"sh", "-c", "echo ready; sleep 1; exec cat"}));
  std::thread writer([&] { (void)write_all(run_.stdin_w, input); });
  ASSERT_TRUE(wait_output("ready\n"));
  ::usleep(300'000);  // the stdin is where it will be
  connect_control();
  json st = command("begin");
  ASSERT_FALSE(st.contains("error")) << st.dump();
  EXPECT_EQ(st["stdin"].get<std::size_t>(), input.size());
  EXPECT_GT(st["in_pipe"].get<std::size_t>(), 0u);
  EXPECT_GT(st["buffered"].get<std::size_t>(), 0u);
  EXPECT_EQ(st["in_pipe"].get<std::size_t>() + st["buffered"].get<std::size_t>(), input.size());
  std::ifstream dump(g_dump_path, std::ios::binary);
  const std::string unconsumed((std::istreambuf_iterator<char>(dump)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(unconsumed == input) << "the unconsumed stdin is not the input in order";
  json c = command("cancel");
  EXPECT_EQ(c.value("resumed", false), true) << c.dump();
  writer.join();
  EXPECT_EQ(finish(), 0) << err();
  ASSERT_EQ(out().size(), input.size() + 6);
  EXPECT_TRUE(out() == "ready\n" + input) << "stdin lost or repeated across the cancelled move";
  EXPECT_NE(err().find("stays on node source"), std::string::npos) << err();
}

// ---- arbitration -------------------------------------------------------------------------------

TEST_F(RunHandoff, ResumeWinsAndTheLateTargetIsRejected) {
  start(spec({"python3", "-u", "-c",
              "import signal, sys\n"
              "signal.signal(signal.SIGUSR2, lambda *a: print('usr2', flush=True))\n"
              "print('ready', flush=True)\n"
              "line = sys.stdin.readline()\n"
              "print('after-' + line.strip())\n"
              "raise SystemExit(4)"}));
  ASSERT_TRUE(wait_output("ready\n"));
  connect_control();
  json st = command("begin");
  ASSERT_FALSE(st.contains("error")) << st.dump();
  ::kill(run_.anchor, SIGUSR2);  // held by the anchor, then delivered to the resumed copy
  ::usleep(100'000);
  json c = command("cancel");
  ASSERT_EQ(c.value("resumed", false), true) << c.dump();
  ASSERT_TRUE(wait_output("usr2\n")) << err();
  FakeTarget t;
  ASSERT_TRUE(t.attach(run_.home_fd, spec_.id, st["epoch"], offsets_of(st)));
  EXPECT_EQ(t.answer, FrameType::kRejected);
  EXPECT_NE(decode_message(t.payload).find("not being handed off"), std::string::npos) << t.payload;
  EXPECT_EQ(finish("go\n"), 4) << err();
  EXPECT_EQ(out(), "ready\nusr2\nafter-go\n");
}

TEST_F(RunHandoff, AttachWinsAndTheSourceIsRejected) {
  start(spec({"sh", "-c", "echo ready; exec sleep 60"}));
  ASSERT_TRUE(wait_output("ready\n"));
  connect_control();
  json st = command("begin");
  ASSERT_FALSE(st.contains("error")) << st.dump();
  const std::uint32_t epoch = st["epoch"];
  // A stale epoch and wrong offsets are refused; they do not settle the move.
  FakeTarget stale, wrong, good;
  ASSERT_TRUE(stale.attach(run_.home_fd, spec_.id, epoch + 1, offsets_of(st)));
  EXPECT_EQ(stale.answer, FrameType::kRejected);
  StreamOffsets off = offsets_of(st);
  off.stdout_bytes += 1;
  ASSERT_TRUE(wrong.attach(run_.home_fd, spec_.id, epoch, off));
  EXPECT_EQ(wrong.answer, FrameType::kRejected);
  EXPECT_NE(decode_message(wrong.payload).find("offsets differ"), std::string::npos) << wrong.payload;
  ASSERT_TRUE(good.attach(run_.home_fd, spec_.id, epoch, offsets_of(st)));
  ASSERT_EQ(good.answer, FrameType::kAttached);
  auto a = decode_attached(good.payload);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->stdin_bytes, st["stdin"].get<std::uint64_t>());
  // The source, told to resume, learns that it lost: its copy dies.
  json c = command("cancel");
  EXPECT_EQ(c.value("resumed", true), false) << c.dump();
  good.send_exit(42);
  EXPECT_EQ(finish(), 42) << err();
  EXPECT_TRUE(WIFEXITED(node_status_) && WEXITSTATUS(node_status_) == 10) << node_status_;
  EXPECT_EQ(out(), "ready\n");
}

TEST_F(RunHandoff, BrokenSourceAfterHandoffThenAttachInTime) {
  start(spec({"sh", "-c", "echo ready; exec sleep 60"}), /*handoff_wait_ms=*/5000);
  ASSERT_TRUE(wait_output("ready\n"));
  connect_control();
  json st = command("begin");
  ASSERT_FALSE(st.contains("error")) << st.dump();
  send_only("die");  // the source node dies mid-move
  ::usleep(1'000'000);
  FakeTarget t;
  ASSERT_TRUE(t.attach(run_.home_fd, spec_.id, st["epoch"], offsets_of(st)));
  EXPECT_EQ(t.answer, FrameType::kAttached);
  t.send_exit(6);
  EXPECT_EQ(finish(), 6) << err();
}

TEST_F(RunHandoff, BrokenSourceAfterHandoffAndNoAttachIsALostJob) {
  start(spec({"sh", "-c", "echo ready; exec sleep 60"}), /*handoff_wait_ms=*/2000);
  ASSERT_TRUE(wait_output("ready\n"));
  connect_control();
  json st = command("begin");
  ASSERT_FALSE(st.contains("error")) << st.dump();
  send_only("die");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(finish(), kExitNodeDied);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(1500));
  EXPECT_LT(waited, std::chrono::milliseconds(8000));
  EXPECT_NE(err().find("no node took it over within 2 s"), std::string::npos) << err();
  const std::string e = err();
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 2) << e;  // the -v start line and one more
}

TEST_F(RunHandoff, AttachWithoutAHandoffIsRejected) {
  start(spec({"sh", "-c", "echo ready; read x"}));
  ASSERT_TRUE(wait_output("ready\n"));
  FakeTarget t;
  ASSERT_TRUE(t.attach(run_.home_fd, spec_.id, 1, StreamOffsets{6, 0, 0, 0}));
  EXPECT_EQ(t.answer, FrameType::kRejected);
  EXPECT_EQ(finish("x\n"), 0);
  EXPECT_EQ(out(), "ready\n");
}

}  // namespace
}  // namespace osmo::run::testing
