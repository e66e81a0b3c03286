// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon side of `osmo run`, `osmo ps` and `osmo kill` (see run_service.hpp).
#include "run/run_service.hpp"

#include <chrono>
#include <dirent.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <unistd.h>

#include <future>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "base/fd_io.hpp"
#include "base/log.hpp"
#include "cluster_view/decisions.hpp"
#include "env/clock.hpp"
#include "env/random.hpp"
#include "platform/linux/proc_parse.hpp"
#include "platform/linux/socket.hpp"
#include "platform/linux/sysfs_io.hpp"
#include "policy/placement.hpp"
#include "run/anchor_registry.hpp"
#include "run/fd_util.hpp"
#include "run/frame.hpp"
#include "run/handoff_frames.hpp"
#include "run/job_spec.hpp"
#include "run/job_table.hpp"
#include "run/launcher.hpp"
#include "run/shepherd.hpp"

namespace osmo::run {

namespace {

MovabilityCheck& movability_check() {
  static MovabilityCheck check;
  return check;
}

using daemon::ControlContext;
using daemon::Json;

// A dead or partitioned node must not make `osmo run` hang: connect + handshake deadline.
constexpr int kDialTimeoutMs = 2000;
// Deadline for a node's answer to jobs.list / jobs.signal.
constexpr int kQueryTimeoutMs = 3000;
// The executable the shepherd is started from: ourselves, even if the file was replaced since.
constexpr const char* kSelfExe = "/proc/self/exe";

struct Credentials {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

// The caller's credentials from the kernel: SO_PEERCRED gives uid/gid; the supplementary groups
// come from /proc/<pid>/status, accepted only if the same file still shows that uid and gid (so a
// pid that was recycled in between is noticed).
Result<Credentials> peer_credentials(const ucred& peer) {
  const std::string path = fmt::format("/proc/{}/status", peer.pid);
  auto text = platform::read_text_file(path);
  if (!text.ok()) return Error{text.error().code, fmt::format("cannot read {} for the caller's groups", path)};
  auto st = platform::parse_pid_status(*text);
  if (!st.ok()) return make_error("{}: {}", path, st.error().message);
  if (!st->has_uid || st->uid[1] != peer.uid || !st->has_gid || st->gid[1] != peer.gid)
    return make_error("caller pid {} changed credentials or exited during the request", peer.pid);
  return Credentials{peer.uid, peer.gid, std::vector<gid_t>(st->groups.begin(), st->groups.end())};
}

Status write_line(int fd, const Json& j) { return write_all(fd, j.dump() + "\n"); }

Result<Json> read_reply(int fd, int timeout_ms) {
  platform::set_receive_timeout(fd, timeout_ms);
  std::string text;
  const IoResult r = read_to_end(fd, &text, 64u << 20);
  if (r.error == EFBIG) return make_error("a peer's reply exceeds 64 MiB");
  if (!r.ok()) return Error{r.error, "reading a peer's reply"};
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error("a peer sent a malformed reply");
  return j;
}

class RunService : public std::enable_shared_from_this<RunService> {
 public:
  explicit RunService(daemon::DaemonApi& api)
      : api_(api), log_(api.node_name(), "run"), random_(env::make_system_random()) {
    auto l = ShepherdLauncher::start(log_);
    if (l.ok())
      launcher_ = std::move(l).value();
    else
      log_.warn("no shepherd launcher ({}); jobs start with fork+exec", l.error().str());
    // Metrics (docs/operations.md). The names are fixed, so registration fails only on a clash
    // with another part: logged, and that metric is then not kept.
    auto& m = api.metrics();
    auto or_null = [this](auto r) -> std::decay_t<decltype(r.value())> {
      if (r.ok()) return r.value();
      log_.warn("metrics: {}", r.error().str());
      return nullptr;
    };
    const char* where[2] = {"home", "remote"};
    for (int i = 0; i < 2; ++i) {
      placed_[i] = or_null(m.counter("osmo_placements_total",
                                     "Jobs started by osmo run at this node (their home), by where they went",
                                     {{"where", where[i]}}));
      start_seconds_[i] = or_null(m.histogram(
          "osmo_job_start_seconds", "Time from osmo run's request to a running job's stream, placement and remote start included",
          metrics::duration_buckets(), {{"where", where[i]}}));
    }
    const char* reason[2] = {"no_node", "refused"};
    for (int i = 0; i < 2; ++i)
      failed_[i] = or_null(m.counter("osmo_placements_failed_total", "osmo run requests that started no job, by reason",
                                     {{"reason", reason[i]}}));
  }

  void install(daemon::Services& s) {
    auto self = shared_from_this();
    s.add_control("run.start", [self](const Json& r, ControlContext& c) { return self->run_start(r, c); });
    s.add_control("jobs.list", [self](const Json& r, ControlContext&) { return self->jobs_list(r); });
    s.add_control("jobs.kill", [self](const Json& r, ControlContext& c) { return self->jobs_kill(r, c); });
    s.add_peer("job.start", [self](UniqueFd conn, const Json& h, const daemon::PeerContext& ctx) {
      self->peer_job_start(std::move(conn), h, ctx);
    });
    s.add_control("run.anchor", [self](const Json& r, ControlContext& c) { return self->run_anchor_op(r, c); });
    s.add_peer("job.attach", [self](UniqueFd conn, const Json& h, const daemon::PeerContext& ctx) {
      self->peer_job_attach(std::move(conn), h, ctx);
    });
    s.add_peer("jobs.list", [self](UniqueFd conn, const Json&, const daemon::PeerContext&) {
      auto jobs = self->local_jobs();
      (void)write_line(conn.get(), jobs.ok() ? Json{{"jobs", *jobs}} : Json{{"error", jobs.error().str()}});
    });
    s.add_peer("jobs.signal", [self](UniqueFd conn, const Json& h, const daemon::PeerContext&) {
      (void)write_line(conn.get(), self->local_signal(h));
    });
    s.set_job_counter([self] { return self->count_jobs(); });
  }

 private:
  struct Target {
    std::string name;
    env::Endpoint addr;
    bool is_self = false;
  };

  // Placement: the one place that decides where a new job goes (policy/placement.hpp). Returns
  // the chosen node, or why there is none.
  Result<Target> choose_target(const std::string& wanted, bool home) {
    const auto members = api_.members();
    if (home || wanted == api_.node_name()) return Target{api_.node_name(), api_.advertise(), true};
    if (!wanted.empty()) {
      for (const auto& m : members)
        if (m.name == wanted) {
          if (m.state != gossip::MemberState::kAlive)
            return make_error("node {} is {}", wanted, gossip::to_string(m.state));
          return Target{m.name, m.addr, m.is_self};
        }
      return make_error("no node named {} in the cluster", wanted);
    }
    // The simulator places through the same call (rules and refusal: cluster_view/decisions.hpp).
    std::lock_guard lk(mu_);
    auto p = cluster_view::place_job(policy::PlacementRequest{}, members, ledger_, clock_.now_ms(),
                                     random_);
    if (!p.ok()) return p.take_error();
    for (const auto& m : members)
      if (m.name == p->node) return Target{m.name, m.addr, m.is_self};
    return make_error("placement chose {}, which is no longer a member", p->node);
  }

  Status start_shepherd(int stream_fd, const JobSpec& spec) {
    if (launcher_) {
      auto s = launcher_->launch(stream_fd, spec);
      if (s.ok()) return s;
      log_.warn("job={} {}; falling back to fork+exec", spec.id, s.error().str());
    }
    return spawn_shepherd(kSelfExe, stream_fd, spec);
  }

  // Starts the shepherd here on one end of a socketpair; the other end is the relay stream.
  Result<UniqueFd> start_local(JobSpec spec) {
    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
      return errno_error("socketpair for job {}", spec.id);
    UniqueFd mine(sp[0]), theirs(sp[1]);
    spec.node = api_.node_name();
    spec.state_dir = api_.state_dir().string();
    OSMO_TRY(start_shepherd(theirs.get(), spec));
    return mine;
  }

  Result<Json> run_start(const Json& req, ControlContext& ctx) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_start_placed(req, ctx);
    if (r.ok() && r->contains("failed")) {
      if (auto* c = failed_[(*r)["failed"] == "no_node" ? 0 : 1]) c->add();
    } else if (r.ok()) {
      const int i = r->value("node", "") == api_.node_name() ? 0 : 1;
      if (placed_[i] != nullptr) placed_[i]->add();
      if (start_seconds_[i] != nullptr)
        start_seconds_[i]->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return r;
  }

  Result<Json> run_start_placed(const Json& req, ControlContext& ctx) {
    Json fields = req;
    fields["uid"] = ctx.peer.uid;
    fields["gid"] = ctx.peer.gid;
    auto parsed = job_spec_from_json(fields);
    if (!parsed.ok()) return parsed.take_error();
    JobSpec spec = std::move(parsed).value();
    OSMO_ASSIGN_OR_RETURN(Credentials cred, peer_credentials(ctx.peer));
    spec.uid = cred.uid;
    spec.gid = cred.gid;
    spec.groups = cred.groups;
    spec.id = new_job_id();
    spec.home = api_.node_name();
    OSMO_ASSIGN_OR_RETURN(spec.attach_token, new_attach_token());
    // `osmo run` keeps this connection as the job's anchor registration (anchor_registry.hpp).
    const bool anchor = req.value("anchor", false);
    if (anchor) OSMO_TRY(anchors_.can_register(spec.id, spec.attach_token));

    auto target = choose_target(req.value("node", ""), req.value("at_home", false));
    if (!target.ok())
      return Json{{"failed", "no_node"}, {"message", target.error().str()}};
    Result<UniqueFd> stream = make_error("unreached");
    if (target->is_self) {
      stream = start_local(spec);
      if (!stream.ok()) return Json{{"failed", "refused"}, {"message", stream.error().str()}};
    } else {
      spec.node = target->name;
      daemon::DialFailure why = daemon::DialFailure::kUnreachable;
      stream = api_.dial_peer(target->addr, "job.start", Json{{"spec", to_json(spec)}}, kDialTimeoutMs, &why);
      if (!stream.ok()) {
        const Error& e = stream.error();
        // A node that answered and refused (another cluster secret, no job service) is not
        // "unreachable": the caller is told so, and the job does not silently start elsewhere.
        if (why != daemon::DialFailure::kUnreachable)
          return Json{{"failed", "refused"}, {"message", e.str()}};
        if (!req.value("node", std::string()).empty())
          return Json{{"failed", "no_node"}, {"message", fmt::format("node {} unreachable: {}", target->name, e.str())}};
        // The view said it was alive, but it is not reachable: the home node always is.
        log_.warn("job={} placement target {} unreachable ({}); starting at home", spec.id,
                  target->name, e.str());
        stream = start_local(spec);
        if (!stream.ok()) return Json{{"failed", "refused"}, {"message", stream.error().str()}};
        target = Target{api_.node_name(), api_.advertise(), true};
      }
    }
    log_.info("job={} uid={} placed on {} cmd={}", spec.id, spec.uid, target->name, command_line(spec.argv));
    ctx.reply_fds.push_back(std::move(stream).value());
    Json reply{{"id", spec.id}, {"node", target->name}};
    if (anchor) {
      keep_as_anchor(ctx, spec.id, spec.attach_token);
      reply["attach_token"] = spec.attach_token;  // for run.anchor after a daemon restart
    }
    return reply;
  }

  void keep_as_anchor(ControlContext& ctx, const std::string& id, const std::string& token) {
    ctx.keep_connection = [self = shared_from_this(), id, token, uid = ctx.peer.uid](UniqueFd conn) {
      self->anchors_.add(id, token, uid, std::move(conn));
    };
  }

  // run.anchor {id, attach_token}: `osmo run` registers again (this daemon restarted since
  // run.start). Knowing the token is the proof: it was only ever given to the job's caller and
  // to its shepherds.
  Result<Json> run_anchor_op(const Json& req, ControlContext& ctx) {
    const std::string id = req.value("id", ""), token = req.value("attach_token", "");
    OSMO_TRY(anchors_.can_register(id, token));
    keep_as_anchor(ctx, id, token);
    return Json::object();
  }

  // job.attach {id, epoch, token}: a shepherd that took job `id` over after a move wants its
  // anchor; the stream goes to the `osmo run` process as it is (see anchor_registry.hpp).
  void peer_job_attach(UniqueFd conn, const Json& header, const daemon::PeerContext& ctx) {
    const std::string id = header.value("id", ""), token = header.value("token", "");
    const auto epoch = header.value("epoch", std::uint32_t{0});
    auto s = anchors_.pass_attach(id, token, epoch, ctx.remote_node, conn.get());
    if (s.ok()) {
      log_.info("job={} stream from {} passed to its anchor (epoch {})", id, ctx.remote_node, epoch);
      return;
    }
    log_.warn("job={} attach from {} refused: {}", id, ctx.remote_node, s.error().str());
    std::vector<char> f;
    append_frame(f, FrameType::kRejected,
                 encode_message(fmt::format("node {}: {}", api_.node_name(), s.error().str())));
    (void)write_all(conn.get(), std::string_view(f.data(), f.size()));
  }

  void peer_job_start(UniqueFd conn, const Json& header, const daemon::PeerContext& ctx) {
    auto parsed = header.contains("spec") ? job_spec_from_json(header["spec"])
                                          : Result<JobSpec>(make_error("job.start without a spec"));
    Status started = ok_status();
    if (parsed.ok()) {
      JobSpec spec = std::move(parsed).value();
      spec.node = api_.node_name();
      spec.state_dir = api_.state_dir().string();
      log_.info("job={} from {} uid={} cmd={}", spec.id, ctx.remote_node, spec.uid, command_line(spec.argv));
      started = start_shepherd(conn.get(), spec);
    } else {
      started = parsed.take_error();
    }
    if (!started.ok()) {
      std::vector<char> f;
      append_frame(f, FrameType::kRefused,
                   Json{{"message", fmt::format("node {}: {}", api_.node_name(), started.error().str())}}.dump());
      (void)write_all(conn.get(), std::string_view(f.data(), f.size()));
    }
  }

  Result<Json> local_jobs() {
    OSMO_ASSIGN_OR_RETURN(auto jobs, list_jobs(api_.state_dir()));
    Json out = Json::array();
    const MovabilityCheck& movable = movability_check();
    for (const auto& j : jobs) {
      Json o = to_json(j);
      // The record's own verdict first, then the migration code's, which looks at the process.
      Status m = record_movable(j.rec);
      if (m.ok() && movable) m = movable(j.rec);
      // A pinned job could be moved by `osmo migrate --force`, but it is not movable in the
      // sense ps shows: neither the balancer nor a plain `osmo migrate` moves it.
      if (m.ok() && j.rec.no_migrate)
        m = make_error("pinned by osmo run --no-migrate (only osmo migrate --force moves it)");
      if (!m.ok() || movable) {
        o["movable"] = m.ok();
        o["why_not"] = m.ok() ? Json(nullptr) : Json(m.error().message);
      }
      out.push_back(std::move(o));
    }
    return out;
  }

  Json local_signal(const Json& h) {
    if (h.value("via", "") == "anchor") {
      // Round one of jobs.kill: only the job's home answers, through its anchor.
      const int sig = h.value("signal", SIGTERM);
      auto r = anchors_.pass_signal(h.value("id", ""), sig, h.value("uid", 65534u));
      if (!r.ok()) return Json{{"found", true}, {"error", r.error().str()}};
      if (r->has_value()) log_.info("job={} signal {} passed to its anchor", **r, sig);
      return Json{{"found", r->has_value()}};
    }
    const auto r = signal_job(api_.state_dir(), h.value("id", ""), h.value("signal", SIGTERM),
                              h.value("uid", 65534u));
    if (!r.ok()) return Json{{"found", true}, {"error", r.error().str()}};
    return Json{{"found", *r}};
  }

  std::uint32_t count_jobs() {
    std::uint32_t n = 0;
    DIR* d = ::opendir(jobs_dir(api_.state_dir()).c_str());
    if (d == nullptr) return 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() > 5 && name[0] != '.' && name.ends_with(".json")) ++n;
    }
    ::closedir(d);
    return n;
  }

  // Runs `local` here and `remote` (a peer service) on every other alive member, in parallel.
  template <typename Local>
  std::vector<std::pair<std::string, Result<Json>>> ask_all(const std::string& only,
                                                             const std::string& service,
                                                             const Json& header, Local local) {
    std::vector<std::pair<std::string, std::future<Result<Json>>>> pending;
    for (const auto& m : api_.members()) {
      if (!only.empty() && m.name != only) continue;
      if (m.state != gossip::MemberState::kAlive && !m.is_self) continue;
      if (m.is_self) {
        pending.emplace_back(m.name, std::async(std::launch::deferred, local));
        continue;
      }
      pending.emplace_back(m.name, std::async(std::launch::async, [this, addr = m.addr, service, header]() -> Result<Json> {
        OSMO_ASSIGN_OR_RETURN(UniqueFd fd, api_.dial_peer(addr, service, header, kDialTimeoutMs));
        return read_reply(fd.get(), kQueryTimeoutMs);
      }));
    }
    std::vector<std::pair<std::string, Result<Json>>> out;
    for (auto& [name, f] : pending) out.emplace_back(name, f.get());
    return out;
  }

  Result<Json> jobs_list(const Json& req) {
    const std::string only = req.value("node", "");
    Json jobs = Json::array(), errors = Json::array();
    auto answers = ask_all(only, "jobs.list", Json::object(), [this]() -> Result<Json> {
      OSMO_ASSIGN_OR_RETURN(Json j, local_jobs());
      return Json{{"jobs", j}};
    });
    if (!only.empty() && answers.empty()) return make_error("no alive node named {}", only);
    for (auto& [name, r] : answers) {
      if (!r.ok()) {
        errors.push_back(fmt::format("{}: {}", name, r.error().str()));
        continue;
      }
      if (r->contains("error")) {
        errors.push_back(fmt::format("{}: {}", name, (*r)["error"].get<std::string>()));
        continue;
      }
      for (auto& j : (*r)["jobs"]) jobs.push_back(j);
    }
    return Json{{"jobs", jobs}, {"errors", errors}};
  }

  // Sub-jobs (docs/spread.md): `osmo kill` on a job also reaches every program it started on
  // other nodes, and theirs, each through its own anchor (its deputy), as `osmo kill` on each
  // would. Best effort: a sub-job that ended meanwhile is no error.
  void signal_sub_jobs(const std::string& id_or_prefix, int sig, uid_t uid) {
    auto listed = jobs_list(Json::object());
    if (!listed.ok()) return;
    std::vector<std::pair<std::string, std::string>> all;  // id, parent
    for (const auto& j : (*listed)["jobs"])
      all.emplace_back(j.value("id", ""), j.contains("parent") && j["parent"].is_string() ? j["parent"].get<std::string>() : "");
    std::vector<std::string> frontier;
    for (const auto& [id, parent] : all)
      if (id.rfind(id_or_prefix, 0) == 0) frontier.push_back(id);
    if (frontier.size() != 1) return;
    for (std::size_t depth = 0; depth < 32 && !frontier.empty(); ++depth) {
      std::vector<std::string> next;
      for (const auto& [id, parent] : all)
        if (std::find(frontier.begin(), frontier.end(), parent) != frontier.end()) next.push_back(id);
      for (const auto& child : next) {
        const Json h{{"id", child}, {"signal", sig}, {"uid", uid}, {"via", "anchor"}};
        (void)ask_all("", "jobs.signal", h, [this, h]() -> Result<Json> { return local_signal(h); });
        log_.info("job={} signal {} sent to sub-job {}", id_or_prefix, sig, child);
      }
      frontier = std::move(next);
    }
  }

  Result<Json> jobs_kill(const Json& req, ControlContext& ctx) {
    const std::string id = req.value("id", "");
    const int sig = req.value("signal", SIGTERM);
    if (id.empty()) return make_error("jobs.kill needs an id");
    if (sig < 0 || sig >= NSIG) return make_error("signal {} out of range", sig);
    // First through the job's anchor at its home: the signal then travels the relay stream, so it
    // reaches the job even while it moves (held, then delivered where it lands). Then, for a job
    // without an anchor (its home daemon restarted and `osmo run` has not registered again yet),
    // straight to the node that runs it.
    Json header{{"id", id}, {"signal", sig}, {"uid", ctx.peer.uid}, {"via", "anchor"}};
    auto via_anchor = ask_all("", "jobs.signal", header, [this, header]() -> Result<Json> { return local_signal(header); });
    for (auto& [name, r] : via_anchor) {
      if (!r.ok() || !r->value("found", false)) continue;
      if (r->contains("error")) return make_error("{}", (*r)["error"].get<std::string>());
      signal_sub_jobs(id, sig, ctx.peer.uid);
      return Json{{"node", name}, {"via", "anchor"}};
    }
    header.erase("via");
    auto answers = ask_all("", "jobs.signal", header, [this, header]() -> Result<Json> { return local_signal(header); });
    std::vector<std::string> unreachable;
    for (auto& [name, r] : answers) {
      if (!r.ok()) {
        unreachable.push_back(name);
        continue;
      }
      if (!r->value("found", false)) continue;
      if (r->contains("error")) return make_error("{}", (*r)["error"].get<std::string>());
      signal_sub_jobs(id, sig, ctx.peer.uid);
      return Json{{"node", name}};
    }
    if (!unreachable.empty())
      return make_error("no job {} on the reachable nodes ({} unreachable: {})", id, unreachable.size(),
                        fmt::join(unreachable, ", "));
    return make_error("no job {} in the cluster", id);
  }

  daemon::DaemonApi& api_;
  Logger log_;
  metrics::Counter* placed_[2] = {nullptr, nullptr};        // home, remote
  metrics::Histogram* start_seconds_[2] = {nullptr, nullptr};
  metrics::Counter* failed_[2] = {nullptr, nullptr};        // no_node, refused
  AnchorRegistry anchors_;
  std::unique_ptr<ShepherdLauncher> launcher_;
  std::mutex mu_;  // guards ledger_ and random_
  policy::PlacementLedger ledger_;
  env::SeededRandom random_;
  env::SystemClock clock_;
};

}  // namespace

Result<UniqueFd> dial_job_attach(daemon::DaemonApi& api, const JobSpec& spec, std::uint32_t epoch,
                                 int timeout_ms) {
  env::Endpoint home;
  bool found = spec.home == api.node_name();
  if (found) home = api.advertise();
  for (const auto& m : api.members())
    if (!found && m.name == spec.home) {
      home = m.addr;
      found = true;
    }
  if (!found) return make_error("job {}: its home node {} is not a member of the cluster", spec.id, spec.home);
  return api.dial_peer(home, "job.attach", job_attach_header(spec, epoch), timeout_ms);
}

Json job_attach_header(const JobSpec& spec, std::uint32_t epoch) {
  return Json{{"id", spec.id}, {"epoch", epoch}, {"token", spec.attach_token}};
}

void set_movability_check(MovabilityCheck check) { movability_check() = std::move(check); }

void install_run_service(daemon::Services& services, daemon::DaemonApi& api) {
  std::make_shared<RunService>(api)->install(services);
}

}  // namespace osmo::run
