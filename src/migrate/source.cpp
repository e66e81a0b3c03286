// SPDX-License-Identifier: GPL-2.0-or-later
// The source side of a migration (see source.hpp). Timeline (stop-and-copy):
//
//   source shepherd                       target shepherd                 home anchor
//   <- ready (target runs, user known)
//   freeze (seize) ... image ----------->  restore (held: not running)
//   drain output, handoff ------------------------------------------->  stop stdin/signals
//                                        <----------------------------  handoff-ack(stdin offset)
//   stdio offsets + unread stdin ------>
//                                        <- restored
//                                        attach(epoch) -------------->  accept (first wins)
//                                        <----------------------------  attached
//   <- attached                          commit: the job runs there
//   kill the frozen original; forget it
//
// The anchor is the only judge of who owns the job after the handoff: the target runs its copy
// only after `attached`, we resume ours only after `resumed`. So a link cut at any moment leaves
// exactly one copy running: if the anchor accepted the target, our `resume` is refused and we
// kill the frozen original; if it accepted our `resume` first, the target's attach is refused and
// it kills its copy (which never ran).
#include "migrate/source.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/fault.hpp"
#include "base/log.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/lazy_pages.hpp"
#include "migrate/postcopy.hpp"
#include "migrate/precopy.hpp"
#include "migrate/protocol.hpp"
#include "migrate/sealed_image.hpp"
#include "platform/linux/socket.hpp"
#include "platform/linux/sysfs_io.hpp"
#include "run/fd_util.hpp"
#include "run/job_spec.hpp"
#include "run/job_table.hpp"

namespace osmo::migrate {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// How long we wait for the target's next message once the image is sent: it restores the image
// meanwhile (a 4 GiB restore takes seconds here) and attaches to home. A silent target is then
// given up and the anchor decides.
constexpr int kTargetAnswerMs = 60'000;
// A target that gave up says why right before closing the stream.
constexpr int kTargetReasonMs = 2000;
// The target's first answer (ready or refused) comes at once.
constexpr int kTargetReadyMs = 10'000;
// The handoff steps with the anchor at home (drain, acknowledgements): a round trip or two.
constexpr int kHandoffMs = 30'000;
// The daemon's connection to our control endpoint: idle this long between requests, it is over.
constexpr int kShepherdIdleMs = 60'000;
// A send that makes no progress for this long means the link is cut (or the target frozen):
// TCP itself would retransmit for many minutes while the job stays frozen.
constexpr int kSendStallMs = 10'000;

double ms_since(SteadyClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
}

// CPU time of this whole process (every thread: the engine's readers, the sealing writer) in ms.
double process_cpu_ms() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

// Anonymous memory of process pid (smaps_rollup), 0 if unreadable: post-copy's lazy pages.
std::uint64_t anonymous_bytes(pid_t pid) {
  auto text = platform::read_text_file(fmt::format("/proc/{}/smaps_rollup", pid));
  if (!text.ok()) return 0;
  const std::size_t k = text->find("\nAnonymous:");
  if (k == std::string::npos) return 0;
  return std::strtoull(text->c_str() + k + 11, nullptr, 10) * 1024;
}

using platform::set_receive_timeout;
using platform::set_send_timeout;

// Sends `bytes` as a sealed byte stream (data chunks, then the end chunk).
Status send_bytes(SealedChannel& ch, const std::string& bytes) {
  for (std::size_t off = 0; off < bytes.size(); off += wire::kMaxChunkPayload) {
    const std::size_t n = std::min<std::size_t>(wire::kMaxChunkPayload, bytes.size() - off);
    OSMO_TRY(ch.sealer().write(ch.fd(), wire::ChunkType::kData,
                               {reinterpret_cast<const std::uint8_t*>(bytes.data()) + off, n}));
  }
  return ch.sealer().write(ch.fd(), wire::ChunkType::kEnd, {});
}

class SourceRun {
 public:
  SourceRun(run::MigrationControl& sh, const SourceOrder& o, UniqueFd stream, const ReportFn& report)
      : sh_(sh), o_(o), stream_(std::move(stream)), ch_(stream_.get(), o.session_key, o.suite, true),
        report_(report) {}

  Result<Json> run() {
    const auto t0 = SteadyClock::now();
    const double cpu0 = process_cpu_ms();
    if (o_.method != "auto" && o_.method != "stop" && o_.method != "postcopy" && o_.method != "precopy")
      return make_error("unknown method {} (stop, precopy, postcopy and auto are); job {} stays on {}", o_.method,
                        o_.id, o_.from);
    method_ = o_.method;
    set_receive_timeout(stream_.get(), kTargetReadyMs);
    set_send_timeout(stream_.get(), kSendStallMs);
    run::set_stream_liveness(stream_.get());
    auto answer = ch_.receive();
    if (!answer.ok())
      return make_error("target {} did not take job {} ({}); it stays on {}", o_.to, o_.id, answer.error().str(), o_.from);
    const Json& first = *answer;
    if (first["t"] == msg::kRefused)
      return make_error("target {} refused job {}: {}; it stays on {}", o_.to, o_.id, first.value("error", "?"), o_.from);
    if (first["t"] != msg::kReady) return make_error("target {} answered '{}' instead of ready", o_.to, first["t"].get<std::string>());

    // Fault point: a bit error in the 4th data chunk on the wire (the target must refuse it): a
    // page chunk of the first pre-copy round, or of the image.
    if (fault_armed("migrate.flip_chunk")) ch_.sealer().damage_data_chunk(3);

    // The method (auto decides here), then pre-copy's rounds while the job runs. Nothing here
    // stops the job: a failure leaves it running as if nothing happened (the trackers go).
    std::unique_ptr<PrecopySource> pre;
    if (Status s = choose_and_precopy(pre); !s.ok()) return s.error();

    // Freeze and stream the image: the engine's writer seals its chunks straight onto the stream
    // (no pipe, no pump thread). A send that fails (link cut, target gone) fails the engine's
    // write at once, and the engine resumes the job.
    SealingSink sink(stream_.get(), ch_.sealer());
    freeze_start_ = SteadyClock::now();
    ckpt::CheckpointOptions co;      // stdio pipes are recorded for the target's stand-ins
    co.sync_written_files = true;    // the target reopens them by path: all written must be there
    co.scope = ckpt::TreeScope::kNamespace;  // the job is its whole process tree
    co.sink = &sink;
    // Post-copy: the anonymous memory stays here for now and follows once the job runs there.
    co.lazy_anonymous_pages = method_ == "postcopy";
    // Pre-copy: the pages the target holds unchanged stay out of the image (one last collect per
    // process, now that it is stopped).
    if (pre) co.precopied = [&pre](pid_t pid) { return pre->precopied(pid); };
    ckpt::CheckpointStats stats;
    auto held = ckpt::checkpoint_and_hold(sh_.job_pid(), -1, co, &stats);
    if (held.ok()) (void)sink.finish();  // the end of the image's byte stream
    const std::uint64_t image_bytes = sink.bytes();
    phases_["image"] = ms_since(freeze_start_);
    const Status& pumped = sink.link_status();
    if (!held.ok() && !pumped.ok()) {
      // The stream failed, and the engine gave up and resumed the job. The target's own words
      // say best what happened, if it had time.
      return make_error("{}; job {} runs on {} again", target_failure(pumped.error().str()), o_.id, o_.from);
    }
    if (!held.ok()) {
      // The engine has already resumed the job. The target gets an image without its END
      // section and gives up; tell it why.
      (void)ch_.send(Json{{"t", msg::kAbort}, {"error", held.error().str()}});
      return make_error("cannot checkpoint job {} on {}: {}", o_.id, o_.from, held.error().str());
    }
    if (!pumped.ok()) {
      (void)held->resume();
      return make_error("{}; job {} runs on {} again", target_failure(pumped.error().str()), o_.id, o_.from);
    }

    // Hand the relay over: the job's output up to the freeze reaches home through us.
    auto t = SteadyClock::now();
    auto hand = sh_.begin_handoff(kHandoffMs);
    phases_["handoff"] = ms_since(t);
    if (!hand.ok()) {
      (void)ch_.send(Json{{"t", msg::kAbort}, {"error", hand.error().str()}});
      return undo(*held, fmt::format("cannot hand job {}'s stdio over ({})", o_.id, hand.error().str()));
    }
    if (hand->wait_status) {
      (void)ch_.send(Json{{"t", msg::kAbort}, {"error", "the job ended while frozen"}});
      return undo(*held, fmt::format("job {} ended while it was frozen", o_.id));
    }
    const std::string unread = hand->unconsumed_stdin();
    Json stdio = handoff_to_json(*hand);
    stdio["t"] = msg::kStdio;
    stdio["stdin_unread"] = unread.size();
    Status sent = ch_.send(stdio);
    if (sent.ok()) sent = send_bytes(ch_, unread);
    if (!sent.ok()) return undo(*held, fmt::format("lost the link to target {} ({})", o_.to, sent.error().str()));

    // Wait for the target: restored, then attached (the anchor's verdict), then running.
    set_receive_timeout(stream_.get(), kTargetAnswerMs);
    for (;;) {
      auto m = ch_.receive();
      if (!m.ok()) return undo(*held, where(m.error().str()));
      const std::string type = (*m)["t"];
      if (type == msg::kRestored) {
        phases_["restore"] = m->value("ms", 0.0);
        if (m->contains("cpu_ms")) target_cpu_ms_ = (*m)["cpu_ms"];
        continue;
      }
      if (type == msg::kFailed || type == msg::kRefused)
        return undo(*held, fmt::format("target {} failed: {}", o_.to, m->value("error", "?")));
      if (type != msg::kAttached) return undo(*held, fmt::format("target {} sent '{}' out of turn", o_.to, type));
      break;
    }
    // Decided: home accepted the target. Our frozen copy never runs again.
    if (method_ != "postcopy") (void)held->kill();
    set_receive_timeout(stream_.get(), kTargetReadyMs);
    if (auto m = ch_.receive(); m.ok() && (*m)["t"] == msg::kRunning) freeze_ms_ = ms_since(freeze_start_);
    Json report{{"id", o_.id}, {"from", o_.from}, {"to", o_.to}, {"method", method_},
                {"epoch", o_.epoch}, {"image_bytes", image_bytes}, {"pages", stats.pages_written},
                {"total_ms", ms_since(t0)}, {"phases", phases_}};
    if (!reason_.empty()) report["reason"] = reason_;
    if (!precopy_.is_null()) {
      precopy_["pages_left_out"] = stats.pages_precopied;
      report["precopy"] = precopy_;
      report["image_bytes"] = image_bytes + precopy_.value("bytes", std::uint64_t{0});
      report["final_bytes"] = image_bytes;
    }
    if (freeze_ms_ > 0) report["freeze_ms"] = freeze_ms_;
    // CPU time spent on the move up to the commit, each side (every thread): what a figure of
    // a loaded machine cannot show.
    report["cpu_ms"] = Json{{"source", process_cpu_ms() - cpu0}, {"target", target_cpu_ms_}};
    if (method_ == "postcopy") {
      // The job runs at the target; its anonymous memory is still here, in the frozen original.
      // Send all of it (what the target faults on first), then the original can go. From now on
      // a failure loses the job: the target kills it (it cannot run without its pages) and we
      // must not resume ours (home took the target's).
      t = SteadyClock::now();
      // The job is listed by its new node already: ours is only the frozen memory.
      if (!sh_.spec().state_dir.empty()) run::remove_job_record(sh_.spec().state_dir, o_.id);
      set_receive_timeout(stream_.get(), 0);  // the target may say nothing for long: sends judge the link
      auto pages = serve_lazy_pages(stream_.get(), ch_.sealer(), ch_.opener(),
                                    {HeldPages{stats.image_pid, held->pid(), stats.lazy_runs}}, kTargetAnswerMs);
      (void)held->kill();
      phases_["postcopy"] = ms_since(t);
      report["phases"] = phases_;
      report["total_ms"] = ms_since(t0);
      report["lazy_pages"] = ckpt::runs_pages(stats.lazy_runs);
      if (!pages.ok()) {
        report["error"] = fmt::format("job {} is lost: post-copy from {} to {} failed after the job moved ({})", o_.id,
                                      o_.from, o_.to, pages.error().str());
        return finish(report);
      }
      report["postcopy"] = *pages;
    }
    return finish(report);
  }

 private:
  // Settles method_ (auto: from a 100 ms look at the job's memory and writes), tells the target,
  // and for pre-copy arms the write trackers and sends the rounds. An error leaves the job
  // running untouched (the trackers unregister when `pre` goes).
  Status choose_and_precopy(std::unique_ptr<PrecopySource>& pre) {
    Logger log(o_.from, "migrate");
    if (method_ == "precopy" || method_ == "auto") {
      auto started = PrecopySource::start(sh_.job_pid());
      if (!started.ok() && method_ == "precopy")
        return make_error("cannot pre-copy job {} on {}: {}; it runs on {} again", o_.id, o_.from,
                          started.error().str(), o_.from);
      if (!started.ok()) {
        method_ = "stop";
        reason_ = fmt::format("no write tracking ({}): stop-and-copy", started.error().str());
      } else {
        pre = std::move(started).value();
      }
    }
    if (method_ == "auto") {
      const auto tp = SteadyClock::now();
      auto mem = pre->present_bytes();
      auto first = pre->probe_written_bytes();  // forget what was written while arming
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto written = pre->probe_written_bytes();
      const double probe_s = ms_since(tp) / 1e3;
      if (!mem.ok() || !first.ok() || !written.ok()) {
        method_ = "stop";
        reason_ = "the job's memory could not be measured: stop-and-copy";
      } else {
        memory_bytes_ = *mem;
        MethodChoice c = choose_method({*mem, static_cast<double>(*written) / probe_s, pre->processes()});
        method_ = c.method;
        reason_ = c.reason;
      }
      phases_["probe"] = ms_since(tp);
      if (method_ != "precopy") pre.reset();
    }
    if (!reason_.empty()) log.info("job={} to {}: method {}: {}", o_.id, o_.to, method_, reason_);
    Json m{{"t", msg::kMethod}, {"method", method_}};
    if (!reason_.empty()) m["reason"] = reason_;
    // The job's memory, for the target to refuse at once a move its memory limit cannot take
    // (pre-copy holds it twice there for a while; post-copy would lose the job to an OOM kill
    // after the commit).
    if (pre && memory_bytes_ == 0) {
      if (auto mem = pre->present_bytes(); mem.ok()) memory_bytes_ = *mem;
    }
    if (memory_bytes_ == 0 && method_ == "postcopy") memory_bytes_ = anonymous_bytes(sh_.job_pid());
    if (memory_bytes_ > 0) m["memory_bytes"] = memory_bytes_;
    if (Status s = ch_.send(m); !s.ok())
      return make_error("{}; job {} runs on {} again", target_failure(s.error().str(), "the method"), o_.id, o_.from);
    if (!pre) return ok_status();
    const auto tr = SteadyClock::now();
    auto rounds = pre->run_rounds(stream_.get(), ch_.sealer(), PrecopyBudget{});
    phases_["precopy"] = ms_since(tr);
    if (!rounds.ok()) {
      pre.reset();  // the job runs on, untracked
      return make_error("{}; job {} runs on {} again (it was never stopped)",
                        target_failure(rounds.error().str(), "pre-copy's pages"), o_.id, o_.from);
    }
    precopy_ = *rounds;
    log.info("job={} to {}: pre-copy {} rounds, {} pages in {:.1f} ms; freezing: {}", o_.id, o_.to,
             (*rounds)["rounds"].get<std::size_t>(), (*rounds)["pages"].get<std::uint64_t>(),
             (*rounds)["ms"].get<double>(), (*rounds)["reason"].get<std::string>());
    return ok_status();
  }

  // Why the image could not be sent: the target's `failed` or `refused` message if it sent one
  // before it closed the stream (a damaged chunk, out of memory, its daemon gone), else what the
  // link did (`send_error`).
  std::string target_failure(const std::string& send_error, const char* what = "the image") {
    set_receive_timeout(stream_.get(), kTargetReasonMs);
    for (int i = 0; i < 4; ++i) {  // messages the target sent before (ready, restored) come first
      auto m = ch_.receive();
      if (!m.ok()) break;
      if ((*m)["t"] == msg::kFailed || (*m)["t"] == msg::kRefused)
        return fmt::format("target {} failed: {}", o_.to, m->value("error", "?"));
    }
    return fmt::format("lost the link to target {} while sending {} ({})", o_.to, what, send_error);
  }

  std::string where(const std::string& what) const {
    return fmt::format("lost target {} {}", o_.to, what);
  }

  // The migration failed after the handoff began: the anchor decides whether we resume.
  Result<Json> undo(ckpt::HeldProcess& held, const std::string& reason) {
    (void)ch_.send(Json{{"t", msg::kAbort}, {"error", reason}});
    auto resumed = sh_.cancel_handoff(kHandoffMs);
    if (!resumed.ok() || !*resumed) {
      // The anchor chose the target (it attached first), or home is gone: this copy must never
      // run again. If the target has the job, it moved; if home is gone, the job ended with its
      // user, as any job whose anchor is gone.
      (void)held.kill();
      if (!resumed.ok())
        return make_error("{}; and home is unreachable ({}): job {} ends", reason, resumed.error().str(), o_.id);
      return finish(Json{{"id", o_.id}, {"from", o_.from}, {"to", o_.to}, {"method", method_}, {"epoch", o_.epoch},
                         {"note", fmt::format("moved; the target's confirmation was lost ({})", reason)}});
    }
    (void)held.resume();
    return make_error("{}; job {} runs on {} again", reason, o_.id, o_.from);
  }

  // The move committed: the report goes out first, because finish_handoff ends this shepherd
  // (its copy of the job is gone, nothing is left for it to relay).
  Result<Json> finish(Json report) {
    // The job is listed by its new node from now on: our record goes before anyone is told.
    if (!sh_.spec().state_dir.empty()) run::remove_job_record(sh_.spec().state_dir, o_.id);
    report_(report);
    reported_ = true;
    if (auto f = sh_.finish_handoff(); !f.ok()) return make_error("after the move: {}", f.error().str());
    return report;
  }

 public:
  bool reported() const { return reported_; }

 private:
  run::MigrationControl& sh_;
  const SourceOrder& o_;
  UniqueFd stream_;
  SealedChannel ch_;
  SteadyClock::time_point freeze_start_{};
  std::string method_ = "stop";
  std::string reason_;       // why this method (auto's choice, or a fallback)
  std::uint64_t memory_bytes_ = 0;  // the job's private memory, as measured (0: unknown)
  Json precopy_ = nullptr;   // pre-copy: the rounds' figures
  Json target_cpu_ms_ = nullptr;
  double freeze_ms_ = 0;
  Json phases_ = Json::object();
  const ReportFn& report_;
  bool reported_ = false;
};

}  // namespace

Result<SourceOrder> source_order_from_json(const nlohmann::json& j) {
  SourceOrder o;
  o.id = j.value("id", "");
  o.from = j.value("from", "");
  o.to = j.value("to", "");
  o.method = j.value("method", "auto");
  o.epoch = j.value("epoch", 1);
  const int suite = j.value("suite", 0);
  if (suite != 1 && suite != 2) return make_error("migration order with unknown seal suite {}", suite);
  o.suite = static_cast<wire::SealSuite>(suite);
  OSMO_ASSIGN_OR_RETURN(o.session_key, key_from_hex(j.value("session_key", "")));
  if (o.to.empty()) return make_error("migration order without a target");
  return o;
}

void migrate_out(run::MigrationControl& shepherd, const SourceOrder& order, UniqueFd stream, const ReportFn& report) {
  SourceRun run(shepherd, order, std::move(stream), report);
  auto r = run.run();
  if (run.reported()) return;
  report(r.ok() ? *r : Json{{"error", r.error().str()}});
}

nlohmann::json handoff_to_json(const run::HandoffState& s) {
  Json signals = Json::array();
  for (const auto& h : s.held_signals) signals.push_back({{"signo", h.signo}, {"group", h.group}});
  Json j{{"stdout", s.at.stdout_bytes}, {"stderr", s.at.stderr_bytes}, {"stdin", s.at.stdin_bytes},
         {"signals", s.at.signals},     {"epoch", s.epoch},              {"stdin_ended", s.stdin_ended},
         {"held_signals", signals}};
  // The input the job's pty held (a few keys at most: the line discipline keeps 4 KiB).
  if (!s.tty_input.empty())
    j["tty_input"] = to_hex({reinterpret_cast<const std::uint8_t*>(s.tty_input.data()), s.tty_input.size()});
  return j;
}

Result<run::HandoffState> handoff_from_json(const nlohmann::json& j) {
  run::HandoffState s;
  try {
    s.at.stdout_bytes = j.at("stdout").get<std::uint64_t>();
    s.at.stderr_bytes = j.at("stderr").get<std::uint64_t>();
    s.at.stdin_bytes = j.at("stdin").get<std::uint64_t>();
    s.at.signals = j.at("signals").get<std::uint64_t>();
    s.epoch = j.at("epoch").get<std::uint32_t>();
    s.stdin_ended = j.at("stdin_ended").get<bool>();
    if (j.contains("tty_input")) {
      const std::string hex = j.at("tty_input").get<std::string>();
      OSMO_ASSIGN_OR_RETURN(auto bytes, from_hex(hex, hex.size() / 2, "the pty's unread input"));
      s.tty_input.assign(bytes.begin(), bytes.end());
    }
    for (const auto& h : j.at("held_signals")) {
      const int signo = h.at("signo").get<int>();
      if (signo <= 0 || signo >= NSIG) return make_error("held signal {} out of range", signo);
      s.held_signals.push_back({signo, h.at("group").get<bool>()});
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error("malformed stdio state: {}", e.what());
  }
  return s;
}

namespace {
// One move at a time: a shepherd runs one job, and a second order while the first is under way
// (two `osmo migrate` at once) is refused rather than interleaved.
std::atomic<bool>& moving() {
  static std::atomic<bool> flag{false};
  return flag;
}
}  // namespace

void serve_shepherd_control(UniqueFd conn, std::shared_ptr<run::MigrationControl> control) {
  // A thread of its own: the relay goes on (output before the freeze, heartbeats) meanwhile.
  std::thread([conn = std::move(conn), control = std::move(control)]() mutable {
    for (;;) {
      auto p = recv_packet(conn.get(), kShepherdIdleMs, "the daemon");
      if (!p.ok()) return;  // the daemon is done with us (or gone)
      const std::string op = p->json.value("op", "");
      Json answer;
      if (op == "describe") {
        answer = Json{{"spec", run::to_json(control->spec())}, {"job_pid", control->job_pid()}};
      } else if (op == "migrate") {
        auto order = source_order_from_json(p->json);
        if (!order.ok())
          answer = Json{{"error", order.error().str()}};
        else if (!p->fd)
          answer = Json{{"error", "migrate without the target stream"}};
        else if (moving().exchange(true))
          answer = Json{{"error", fmt::format("job {} is already moving", order->id)}};
        else {
          migrate_out(*control, *order, std::move(p->fd),
                      [&](const Json& r) { (void)send_packet(conn.get(), r); });
          moving() = false;
          continue;  // answered by migrate_out (before the shepherd ends, on success)
        }
      } else {
        answer = Json{{"error", fmt::format("unknown request '{}'", op)}};
      }
      if (!send_packet(conn.get(), answer).ok()) return;
    }
  }).detach();
}

}  // namespace osmo::migrate
