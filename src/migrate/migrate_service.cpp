// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon side of migration (see migrate_service.hpp and docs/migration.md).
#include "migrate/migrate_service.hpp"

#include <pwd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "base/fd_io.hpp"
#include "base/log.hpp"
#include "daemon/control_client.hpp"
#include "migrate/files.hpp"
#include "migrate/movable.hpp"
#include "migrate/protocol.hpp"
#include "platform/linux/process.hpp"
#include "platform/linux/socket.hpp"
#include "run/fd_util.hpp"
#include "run/job_spec.hpp"
#include "run/job_table.hpp"
#include "run/relay.hpp"
#include "wire/sealed_stream.hpp"

namespace osmo::migrate {
namespace {

using daemon::ControlContext;
using daemon::Json;

// Connect + handshake with the target; a dead node must not make `osmo migrate` hang.
constexpr int kDialTimeoutMs = 3000;
// The whole migration as the requesting daemon waits for it: a bound, not an expectation (a
// 4 GiB stop-and-copy takes seconds). The source's own deadlines end it long before.
constexpr int kMigrateReplyTimeoutMs = 15 * 60 * 1000;
constexpr const char* kSelfExe = "/proc/self/exe";
// The shepherd answers `describe` at once (it only copies its spec).
constexpr int kDescribeTimeoutMs = 3000;

Status write_line(int fd, const Json& j) { return daemon::send_line(fd, j.dump() + "\n", {}); }

// A connection to a job's shepherd: its control endpoint (run::control_endpoint_path, a unix
// SOCK_SEQPACKET socket in the root-only state directory), one JSON object per record.
class ShepherdLink {
 public:
  static Result<ShepherdLink> connect(const std::filesystem::path& state_dir, const std::string& id) {
    const std::string path = run::control_endpoint_path(state_dir.string(), id);
    UniqueFd s = platform::unix_connect(path, SOCK_SEQPACKET);
    if (!s && errno == ENAMETOOLONG) return make_error("shepherd socket path too long: {}", path);
    if (!s) return errno_error("cannot reach the shepherd of job {} at {}", id, path);
    return ShepherdLink(std::move(s), id);
  }

  // One request (with at most one fd) and its answer.
  Result<Json> call(const Json& request, int fd, int timeout_ms) {
    OSMO_TRY(send_packet(s_.get(), request, fd));
    OSMO_ASSIGN_OR_RETURN(Packet p, recv_packet(s_.get(), timeout_ms, fmt::format("the shepherd of job {}", id_)));
    return std::move(p.json);
  }

 private:
  ShepherdLink(UniqueFd s, std::string id) : s_(std::move(s)), id_(std::move(id)) {}
  UniqueFd s_;
  std::string id_;
};

class MigrateService : public std::enable_shared_from_this<MigrateService> {
 public:
  explicit MigrateService(daemon::DaemonApi& api) : api_(api), log_(api.node_name(), "migrate") {
    // Metrics (docs/operations.md); a name clash with another part is logged and that metric not kept.
    auto& m = api.metrics();
    auto keep = [this](auto r) -> std::decay_t<decltype(r.value())> {
      if (r.ok()) return r.value();
      log_.warn("metrics: {}", r.error().str());
      return nullptr;
    };
    const char* outcome[2] = {"ok", "failed"};
    for (int i = 0; i < 2; ++i)
      moved_[i] = keep(m.counter("osmo_migrations_total",
                                 "Migrations through this node: out (jobs that ran here; the source drives the transaction) by outcome, in (incoming streams offered)",
                                 {{"direction", "out"}, {"outcome", outcome[i]}}));
    moved_in_ = keep(m.counter("osmo_migrations_total",
                               "Migrations through this node: out (jobs that ran here; the source drives the transaction) by outcome, in (incoming streams offered)",
                               {{"direction", "in"}, {"outcome", "offered"}}));
    freeze_ = keep(m.histogram("osmo_migration_freeze_seconds", "How long a migrated job was frozen (source's view)",
                               metrics::duration_buckets()));
    total_ = keep(m.histogram("osmo_migration_seconds", "Whole migrations, from the order to the commit",
                              metrics::duration_buckets()));
  }

  void install(daemon::Services& s) {
    auto self = shared_from_this();
    s.add_control("jobs.migrate", [self](const Json& r, ControlContext& c) { return self->control_migrate(r, c); });
    s.add_peer("job.migrate", [self](UniqueFd conn, const Json& h, const daemon::PeerContext& ctx) {
      log_peer_request(self->log_, "job.migrate", ctx);
      (void)write_line(conn.get(), self->migrate_here(h));
    });
    s.add_peer("job.migrate_in", [self](UniqueFd conn, const Json& h, const daemon::PeerContext& ctx) {
      if (self->moved_in_ != nullptr) self->moved_in_->add();
      self->accept_incoming(std::move(conn), h, ctx);
    });
  }

 private:
  static void log_peer_request(Logger& log, const char* service, const daemon::PeerContext& ctx) {
    log.debug("{} from {} ({})", service, ctx.remote_node, ctx.remote.str());
  }

  // `osmo migrate` on this node: the job runs here or on `node` (as `jobs.list` said).
  Result<Json> control_migrate(const Json& req, ControlContext& ctx) {
    const std::string id = req.value("id", ""), node = req.value("node", "");
    if (id.empty() || node.empty()) return make_error("jobs.migrate needs the job's id and node");
    Json h{{"id", id}, {"to", req.value("to", "")}, {"method", req.value("method", "auto")},
           {"check", req.value("check", false)}, {"uid", ctx.peer.uid}, {"force", req.value("force", false)}};
    Json answer;
    if (node == api_.node_name()) {
      answer = migrate_here(h);
    } else {
      const gossip::MemberView* where = nullptr;
      const auto members = api_.members();
      for (const auto& m : members)
        if (m.name == node) where = &m;
      if (where == nullptr || where->state != gossip::MemberState::kAlive)
        return make_error("job {} runs on {}, which is {}", id, node,
                          where == nullptr ? "not a member" : gossip::to_string(where->state));
      OSMO_ASSIGN_OR_RETURN(UniqueFd fd, api_.dial_peer(where->addr, "job.migrate", h, kDialTimeoutMs));
      std::string pending;
      auto r = read_json_line(fd.get(), pending, kMigrateReplyTimeoutMs, fmt::format("node {}", node));
      if (!r.ok()) return make_error("lost node {} while it moved job {}: {}", node, id, r.error().str());
      answer = std::move(r).value();
    }
    if (answer.contains("error")) return make_error("{}", answer["error"].get<std::string>());
    return answer;
  }

  // On the node that runs the job. Every refusal here happens before the job is touched.
 public:
  Json migrate_here(const Json& h) {
    auto r = try_migrate_here(h);
    if (!r.ok()) return Json{{"error", r.error().str()}};
    return std::move(r).value();
  }

 private:
  Result<Json> try_migrate_here(const Json& h) {
    const std::string id = h.value("id", "");
    const std::string me = api_.node_name();
    OSMO_ASSIGN_OR_RETURN(auto jobs, run::list_jobs(api_.state_dir()));
    const run::JobRecord* rec = nullptr;
    for (const auto& j : jobs)
      if (j.rec.id == id) rec = &j.rec;
    if (rec == nullptr) return make_error("job {} no longer runs on {}", id, me);
    const uid_t uid = h.value("uid", 65534u);
    if (uid != 0 && uid != rec->uid) return make_error("job {} belongs to uid {}, not to you (uid {})", id, rec->uid, uid);

    std::string to = h.value("to", "");
    if (to == "home") to = rec->home;
    const bool check_only = h.value("check", false);
    if (auto m = check_movable(*rec); !m.ok())
      return make_error("cannot migrate job {} on {}: {}", id, me, m.error().message);
    if (check_only && to.empty()) return Json{{"movable", true}, {"detail", "yes"}};
    if (to == me) return make_error("job {} already runs on {}", id, me);
    OSMO_ASSIGN_OR_RETURN(env::Endpoint target, alive_member(to));
    if (check_only) return Json{{"movable", true}, {"detail", fmt::format("yes, to {}", to)}};

    const std::string method = h.value("method", "auto");
    OSMO_ASSIGN_OR_RETURN(ShepherdLink shepherd, ShepherdLink::connect(api_.state_dir(), id));
    OSMO_ASSIGN_OR_RETURN(Json described, shepherd.call(Json{{"op", "describe"}}, -1, kDescribeTimeoutMs));
    if (!described.contains("spec")) return make_error("the shepherd of job {} did not describe it", id);
    const Json& spec = described["spec"];
    if (spec.value("no_migrate", false) && !h.value("force", false))
      return make_error("job {} is pinned (osmo run --no-migrate): osmo migrate --force moves it anyway", id);
    const wire::SealSuite suite = wire::local_seal_suite();
    const wire::SessionId session = wire::random_session_id();
    const int epoch = rec->migrations + 1;
    // The files the job will reopen at the target: checked there before anything is frozen.
    OSMO_ASSIGN_OR_RETURN(Json files, job_files(job_processes(rec->init_pid)));
    Json in_header{{"spec", spec}, {"session", to_hex(session)}, {"suite", static_cast<int>(suite)},
                   {"epoch", epoch}, {"method", method}, {"from", me},
                   {"started_unix_ms", rec->started_unix_ms}, {"files", files}};
    daemon::DialFailure why = daemon::DialFailure::kUnreachable;
    auto stream = api_.dial_peer(target, "job.migrate_in", in_header, kDialTimeoutMs, &why);
    if (!stream.ok())
      return make_error("target {} {}: {}; job {} stays on {}", to,
                        why == daemon::DialFailure::kUnreachable ? "unreachable" : "refused",
                        stream.error().str(), id, me);
    log_.info("job={} migrating to {} (epoch {}, method {}, {})", id, to, epoch, method, wire::seal_suite_name(suite));
    const wire::Key key = wire::derive_session_key(cluster_key(), kSealPurpose, suite, session);
    Json order{{"op", "migrate"}, {"id", id}, {"from", me}, {"to", to}, {"method", method}, {"epoch", epoch},
               {"suite", static_cast<int>(suite)}, {"session_key", to_hex(key)}};
    auto answered = shepherd.call(order, stream->get(), kMigrateReplyTimeoutMs);
    if (!answered.ok())
      return make_error("the shepherd of job {} failed during the migration: {}", id, answered.error().str());
    Json report = std::move(answered).value();
    if (report.contains("error")) {
      log_.warn("job={} migration to {} failed: {}", id, to, report["error"].get<std::string>());
      if (moved_[1] != nullptr) moved_[1]->add();
      return report;
    }
    log_.info("job={} moved to {} ({})", id, to, render_report(report));
    if (moved_[0] != nullptr) moved_[0]->add();
    if (freeze_ != nullptr && report.contains("freeze_ms") && report["freeze_ms"].is_number())
      freeze_->observe(report["freeze_ms"].get<double>() / 1000.0);
    if (total_ != nullptr && report.contains("total_ms") && report["total_ms"].is_number())
      total_->observe(report["total_ms"].get<double>() / 1000.0);
    return report;
  }

  Result<env::Endpoint> alive_member(const std::string& name) {
    if (name.empty()) return make_error("no target node given");
    for (const auto& m : api_.members())
      if (m.name == name) {
        if (m.state != gossip::MemberState::kAlive)
          return make_error("target node {} is {}", name, gossip::to_string(m.state));
        return m.addr;
      }
    return make_error("no node named {} in the cluster", name);
  }

  wire::Key cluster_key() const {
    wire::Key k;
    std::copy(api_.key().begin(), api_.key().end(), k.begin());
    return k;
  }

  // On the target: start the shepherd that restores the job, or refuse on the stream.
  void accept_incoming(UniqueFd conn, const Json& h, const daemon::PeerContext& ctx) {
    auto started = start_incoming(conn.get(), h, ctx);
    if (!started.ok()) {
      log_.warn("refused a migration from {}: {}", ctx.remote_node, started.error().str());
      (void)write_refusal(conn.get(), h, fmt::format("node {}: {}", api_.node_name(), started.error().str()));
    }
  }

  Status start_incoming(int conn, const Json& h, const daemon::PeerContext& ctx) {
    if (!h.contains("spec") || !h["spec"].is_object()) return make_error("job.migrate_in without a spec");
    OSMO_ASSIGN_OR_RETURN(run::JobSpec spec, run::job_spec_from_json(h["spec"]));
    if (spec.uid != 0 && ::getpwuid(spec.uid) == nullptr)
      return make_error("no user with uid {} here", spec.uid);
    OSMO_ASSIGN_OR_RETURN(wire::SessionId session, session_from_hex(h.value("session", "")));
    const int suite_n = h.value("suite", 0);
    if (suite_n != static_cast<int>(wire::SealSuite::kAes256Gcm) &&
        suite_n != static_cast<int>(wire::SealSuite::kChaCha20Poly1305))
      return make_error("unknown seal suite {}", suite_n);
    const auto suite = static_cast<wire::SealSuite>(suite_n);
    if (suite == wire::SealSuite::kAes256Gcm && wire::local_seal_suite() != suite)
      return make_error("this CPU cannot check AES-256-GCM tags");
    env::Endpoint home;
    bool home_known = false;
    for (const auto& m : api_.members())
      if (m.name == spec.home) {
        home = m.addr;
        home_known = true;
      }
    if (!home_known) return make_error("the job's home {} is not a member of the cluster here", spec.home);
    if (h.contains("files")) OSMO_TRY(check_files_here(h["files"]));
    spec.node = api_.node_name();
    spec.state_dir = api_.state_dir().string();
    IncomingOrder order;
    order.spec = run::to_json(spec);
    order.session_key = wire::derive_session_key(cluster_key(), kSealPurpose, suite, session);
    order.suite = suite;
    order.epoch = h.value("epoch", 1);
    order.started_unix_ms = h.value("started_unix_ms", std::int64_t{0});
    order.method = h.value("method", "auto");
    order.source = ctx.remote_node;
    order.home_addr = home.str();
    order.node_name = api_.node_name();
    order.cluster_key = cluster_key();
    order.peer_encryption = api_.peer_encryption();
    OSMO_ASSIGN_OR_RETURN(platform::ProcessIdentity me, platform::identify_process(::getpid()));
    order.daemon_pid = me.pid;
    order.daemon_start = me.start_ticks;
    log_.info("job={} arriving from {} (epoch {})", spec.id, ctx.remote_node, order.epoch);
    // The order travels in a memfd: it holds keys, which must not appear in argv or a file.
    UniqueFd memfd(::memfd_create("osmo-migrate-order", MFD_CLOEXEC));
    if (!memfd) return errno_error("memfd_create for the order of job {}", spec.id);
    OSMO_TRY(write_all(memfd.get(), to_json(order).dump()));
    if (::lseek(memfd.get(), 0, SEEK_SET) != 0) return errno_error("lseek on the order of job {}", spec.id);
    platform::DetachedSpawnOptions o;
    o.exe = kSelfExe;
    o.argv = {"osmo", kIncomingSubcommand, "3", "4"};
    o.log_path = "/proc/self/fd/2";  // the daemon's own log
    o.pass_fds = {conn, memfd.get()};
    OSMO_ASSIGN_OR_RETURN(platform::ProcessIdentity shepherd, platform::spawn_detached(o));
    log_.debug("job={} incoming shepherd pid {}", spec.id, shepherd.pid);
    return ok_status();
  }

  // Tells the source why we refuse, sealed with the session's key when the header lets us derive
  // it (the source only believes authenticated messages); otherwise closing the stream says it.
  Status write_refusal(int conn, const Json& h, const std::string& why) {
    auto session = session_from_hex(h.value("session", ""));
    const int suite_n = h.value("suite", 0);
    if (!session.ok() || (suite_n != 1 && suite_n != 2)) return ok_status();
    const auto suite = static_cast<wire::SealSuite>(suite_n);
    SealedChannel ch(conn, wire::derive_session_key(cluster_key(), kSealPurpose, suite, *session), suite,
                     /*initiator=*/false);
    return ch.send(Json{{"t", msg::kRefused}, {"error", why}});
  }

  daemon::DaemonApi& api_;
  Logger log_;
  metrics::Counter* moved_[2] = {nullptr, nullptr};  // out: ok, failed
  metrics::Counter* moved_in_ = nullptr;             // incoming migration streams accepted
  metrics::Histogram* freeze_ = nullptr;
  metrics::Histogram* total_ = nullptr;
};

}  // namespace

void install_migrate_service(daemon::Services& services, daemon::DaemonApi& api) {
  std::make_shared<MigrateService>(api)->install(services);
}

Result<nlohmann::json> migrate_local_job(daemon::DaemonApi& api, const std::string& id, const std::string& to) {
  // Stateless apart from the api: a MigrateService of our own serves this one request.
  MigrateService service(api);
  Json answer = service.migrate_here(Json{{"id", id}, {"to", to}, {"method", "auto"}, {"uid", 0}});
  if (answer.contains("error")) return make_error("{}", answer["error"].get<std::string>());
  return answer;
}

Result<nlohmann::json> describe_local_job(const std::filesystem::path& state_dir, const std::string& id) {
  OSMO_ASSIGN_OR_RETURN(ShepherdLink shepherd, ShepherdLink::connect(state_dir, id));
  OSMO_ASSIGN_OR_RETURN(Json described, shepherd.call(Json{{"op", "describe"}}, -1, kDescribeTimeoutMs));
  if (!described.contains("spec") || !described["spec"].is_object())
    return make_error("the shepherd of job {} did not describe it", id);
  return described["spec"];
}

std::string render_report(const nlohmann::json& r) {
  std::string s = fmt::format("job {} moved {} -> {} by {}", r.value("id", "?"), r.value("from", "?"),
                              r.value("to", "?"), r.value("method", "?"));
  // auto's choice (or a fallback) says why, in the one line
  if (r.contains("reason") && r["reason"].is_string()) s += fmt::format(" ({})", r["reason"].get<std::string>());
  if (r.contains("freeze_ms")) s += fmt::format(", frozen {:.1f} ms", r["freeze_ms"].get<double>());
  if (r.contains("total_ms")) s += fmt::format(", total {:.1f} ms", r["total_ms"].get<double>());
  if (r.contains("image_bytes"))
    s += fmt::format(", {:.1f} MiB sent", static_cast<double>(r["image_bytes"].get<std::uint64_t>()) / (1 << 20));
  if (r.contains("precopy") && r["precopy"].is_object()) {
    const auto& pc = r["precopy"];
    s += fmt::format("\n  pre-copy: {} rounds, {} pages sent while running, {} of them left out of the final image; "
                     "{:.1f} MiB sent frozen; stopped: {}",
                     pc.value("rounds", std::uint64_t{0}), pc.value("pages", std::uint64_t{0}),
                     pc.value("pages_left_out", std::uint64_t{0}),
                     static_cast<double>(r.value("final_bytes", std::uint64_t{0})) / (1 << 20), pc.value("reason", "?"));
  }
  if (r.contains("postcopy") && r["postcopy"].is_object()) {
    const auto& pc = r["postcopy"];
    const auto& tg = pc.value("target", nlohmann::json::object());
    s += fmt::format("\n  post-copy: {} lazy pages, {} pushed, {} sent on request ({} faults at the target), {} zero",
                     r.value("lazy_pages", std::uint64_t{0}), pc.value("pushed", std::uint64_t{0}),
                     pc.value("requested", std::uint64_t{0}), tg.value("faults", std::uint64_t{0}),
                     pc.value("zero_pages", std::uint64_t{0}));
  }
  if (r.contains("phases") && r["phases"].is_object())
    for (const auto& [k, v] : r["phases"].items()) s += fmt::format("\n  {:<12} {:8.1f} ms", k, v.get<double>());
  return s;
}

}  // namespace osmo::migrate
