// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/daemon.hpp"
#include "daemon/service_manager.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>

#include <cmath>
#include <map>
#include <cstring>
#include <optional>

#include "base/version.hpp"
#include "cluster_view/local_load.hpp"
#include "daemon/control_client.hpp"
#include "daemon/peer_pump.hpp"
#include "platform/linux/socket.hpp"
#include "wire/mac.hpp"

namespace osmo::daemon {
namespace {

// Signals the main loop handles through a signalfd. They must be blocked in every thread, so they
// are blocked before the first thread starts (threads inherit the mask); otherwise a SIGTERM could
// land on a server thread and kill the daemon without its graceful leave.
sigset_t daemon_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&mask, sig);
  return mask;
}

// The wall clock for gossip envelopes' send times (the replay window compares them between nodes;
// the protocol's timers keep the monotonic clock_).
class RealtimeClock final : public env::Clock {
 public:
  env::TimeMs now_ms() const override {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<env::TimeMs>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
  }
};
const RealtimeClock kRealtimeClock;
// Connect + handshake + answer of a peer that is asked to drain: it answers at once.
constexpr int kDrainRequestTimeoutMs = 3000;

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::create(const ResolvedConfig& config, const std::string& load_scope,
                                               double speed_override) {
  platform::LoadScope scope{};
  if (load_scope == "auto") {
    scope = platform::resolve_auto_scope();
  } else if (load_scope == "machine") {
    scope = platform::LoadScope::kMachine;
  } else if (load_scope == "cgroup") {
    scope = platform::LoadScope::kCgroup;
  } else {
    return make_error("--load-scope '{}': expected auto, machine or cgroup", load_scope);
  }
  OSMO_ASSIGN_OR_RETURN(platform::LoadSampler sampler, platform::LoadSampler::create(scope));
  sigset_t mask = daemon_signals();
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  std::unique_ptr<Daemon> d(new Daemon(config, std::move(sampler), speed_override));
  OSMO_TRY(d->start());
  return d;
}

Daemon::Daemon(const ResolvedConfig& config, platform::LoadSampler sampler, double speed_override)
    : config_(config),
      state_dir_(config.state_dir),
      key_(wire::derive_key(config.secret)),
      log_(config.name, "daemon"),
      random_(env::make_system_random()),
      transport_(Logger(config.name, "udp")),
      sampler_(std::move(sampler)),
      speed_override_(speed_override),
      control_(Logger(config.name, "control")),
      peers_(config.name, key_, Logger(config.name, "peer")) {}

Daemon::~Daemon() {
  control_.stop();
  peers_.stop();
}

Status Daemon::start() {
  std::error_code ec;
  std::filesystem::create_directories(state_dir_, ec);
  if (ec) return Error{ec.value(), fmt::format("create state directory {}", state_dir_.string())};
  ::chmod(state_dir_.c_str(), 0700);

  OSMO_TRY(transport_.bind(config_.listen));
  gossip::Config gc;
  gc.node_name = config_.name;
  gc.advertise = config_.advertise;
  gc.seeds = config_.join;
  gc.key.assign(key_.begin(), key_.end());
  gc.encrypt = config_.gossip_encryption;
  OSMO_TRY(gossip::validate(gc));
  node_ = std::make_unique<gossip::Node>(gc, clock_, transport_, random_,
                                         Logger(config_.name, "gossip", [this] { return clock_.now_ms(); }),
                                         &kRealtimeClock);
  load_description_ = sampler_.describe();
  sample_load();

  add_control("nodes", [this](const Json&, ControlContext&) -> Result<Json> {
    return Json{{"nodes", nodes_json()}};
  });
  add_control("status", [this](const Json&, ControlContext&) -> Result<Json> { return status_json(); });
  add_control("leave", [this](const Json&, ControlContext& ctx) -> Result<Json> {
    if (ctx.peer.uid != 0 && ctx.peer.uid != ::geteuid())
      return make_error("only root or the daemon's own user may make the node leave");
    leave_requested_ = true;
    return Json{{"linger_ms", kLeaveLingerMs}};
  });
  add_control("drain", [this](const Json& r, ControlContext& ctx) { return control_drain(r, ctx); });
  add_peer("node.drain", [this](UniqueFd conn, const Json& h, const PeerContext& ctx) {
    const bool on = h.value("on", true);
    log_.info("{} drain requested by {}", on ? "start" : "stop", ctx.remote_node);
    set_draining(on);
    (void)send_line(conn.get(),
                    Json{{"node", config_.name}, {"draining", draining()}, {"guests", guests()}}.dump() + "\n", {});
  });
  // The daemon's own metrics first, so a plugin's name clash is the plugin's error.
  OSMO_TRY(register_metrics());
  for (const auto& plugin : plugins()) plugin(*this, *this);

  peers_.set_encryption(config_.peer_encryption);
  OSMO_TRY(peers_.start(config_.listen));
  OSMO_TRY(control_.start(config_.socket));
  OSMO_TRY(start_metrics_endpoint());
  started_ms_ = clock_.now_ms();
  {
    std::lock_guard lk(gossip_mu_);
    node_->start();
  }
  log_.info("started: version={} listen={} advertise={} join={} load={} socket={}", kVersion,
            config_.listen.str(), config_.advertise.str(), config_.join.size(), load_description_,
            config_.socket);
  return ok_status();
}

Status Daemon::register_metrics() {
  using metrics::Labels;
  using Samples = std::vector<std::pair<Labels, double>>;
  auto local = [this](double gossip::LoadInfo::*field) {
    return [this, field]() -> Samples {
      std::lock_guard lk(sample_mu_);
      return {{{}, last_load_.*field}};
    };
  };
  OSMO_TRY(metrics_.gauge_callback("osmo_node_load", "This node's load: runnable demand over capacity (1 = full), as gossiped",
                                   local(&gossip::LoadInfo::load)));
  OSMO_TRY(metrics_.gauge_callback("osmo_node_runnable", "This node's smoothed runnable task count",
                                   local(&gossip::LoadInfo::runnable)));
  OSMO_TRY(metrics_.gauge_callback("osmo_node_capacity_cpus", "This node's capacity: CPUs (cpuset, quota) times speed",
                                   [this]() -> Samples {
                                     std::lock_guard lk(sample_mu_);
                                     return {{{}, last_load_.cpus * last_load_.speed}};
                                   }));
  OSMO_TRY(metrics_.gauge_callback("osmo_node_memory_free_bytes", "This node's free memory (machine or cgroup)",
                                   [this]() -> Samples {
                                     std::lock_guard lk(sample_mu_);
                                     return {{{}, static_cast<double>(last_load_.mem_free_mb) * 1048576.0}};
                                   }));
  OSMO_TRY(metrics_.gauge_callback("osmo_node_memory_total_bytes", "This node's memory (machine or cgroup limit)",
                                   [this]() -> Samples {
                                     std::lock_guard lk(sample_mu_);
                                     return {{{}, static_cast<double>(last_load_.mem_total_mb) * 1048576.0}};
                                   }));
  OSMO_TRY(metrics_.gauge_callback("osmo_node_draining", "1 while this node drains (takes no work, moves its guests away)",
                                   [this]() -> Samples { return {{{}, draining() ? 1.0 : 0.0}}; }));
  OSMO_TRY(metrics_.gauge_callback("osmo_jobs_hosted", "osmo jobs running on this node (guests included)",
                                   [this]() -> Samples { return {{{}, job_counter_ ? double(job_counter_()) : 0.0}}; }));
  OSMO_TRY(metrics_.gauge_callback("osmo_jobs_guests", "Jobs running on this node whose home is another node",
                                   [this]() -> Samples { return {{{}, double(guests())}}; }));
  OSMO_TRY(metrics_.gauge_callback("osmo_cluster_members", "Members of the cluster as this node sees them, by state",
                                   [this]() -> Samples {
                                     std::map<std::string, double> by_state;
                                     for (const char* st : {"alive", "suspect", "dead", "left"}) by_state[st] = 0;
                                     for (const auto& m : members()) by_state[gossip::to_string(m.state)] += 1;
                                     Samples out;
                                     for (const auto& [st, n] : by_state) out.push_back({{{"state", st}}, n});
                                     return out;
                                   }));
  OSMO_TRY(metrics_.gauge_callback("osmo_cluster_node_load", "Each member's load as this node last heard it",
                                   [this]() -> Samples {
                                     Samples out;
                                     for (const auto& m : members())
                                       if (m.load) out.push_back({{{"node", m.name}}, m.load->load});
                                     return out;
                                   }));
  auto gossip_counter = [this](std::uint64_t gossip::Counters::*field) {
    return [this, field]() -> Samples {
      std::lock_guard lk(gossip_mu_);
      return {{{}, static_cast<double>(node_->counters().*field)}};
    };
  };
  OSMO_TRY(metrics_.counter_callback("osmo_gossip_datagrams_received_total", "Gossip datagrams received",
                                     gossip_counter(&gossip::Counters::received)));
  OSMO_TRY(metrics_.counter_callback("osmo_gossip_datagrams_sent_total", "Gossip datagrams sent",
                                     gossip_counter(&gossip::Counters::sent)));
  OSMO_TRY(metrics_.counter_callback("osmo_gossip_suspicions_total", "Members this node suspected after a failed probe",
                                     gossip_counter(&gossip::Counters::suspicions)));
  OSMO_TRY(metrics_.counter_callback("osmo_gossip_refutations_total", "Suspicions of this node that it refuted",
                                     gossip_counter(&gossip::Counters::refutations)));
  OSMO_TRY(metrics_.counter_callback("osmo_gossip_dropped_total", "Gossip datagrams dropped, by reason",
                                     [this]() -> Samples {
                                       std::lock_guard lk(gossip_mu_);
                                       const gossip::Counters c = node_->counters();
                                       return {{{{"reason", "bad_mac"}}, double(c.dropped_bad_mac)},
                                               {{{"reason", "bad_version"}}, double(c.dropped_bad_version)},
                                               {{{"reason", "malformed"}}, double(c.dropped_malformed)},
                                               {{{"reason", "foreign"}}, double(c.dropped_foreign)},
                                               {{{"reason", "replay"}}, double(c.dropped_replay)},
                                               {{{"reason", "encryption_mismatch"}}, double(c.dropped_encryption_mismatch)}};
                                     }));
  OSMO_TRY(metrics_.counter_callback("osmo_gossip_sent_bytes_total", "Bytes of gossip datagrams sent",
                                     [this]() -> Samples { return {{{}, double(transport_.bytes_sent())}}; }));
  OSMO_TRY(metrics_.counter_callback("osmo_gossip_received_bytes_total", "Bytes of gossip datagrams received",
                                     [this]() -> Samples { return {{{}, double(transport_.bytes_received())}}; }));
  OSMO_TRY(metrics_.counter_callback("osmo_peer_streams_total", "Peer streams offered to this node, by outcome",
                                     [this]() -> Samples {
                                       const PeerCounters& p = peers_.counters();
                                       return {{{{"outcome", "accepted"}}, double(p.accepted.load())},
                                               {{{"outcome", "refused_auth"}}, double(p.refused_auth.load())},
                                               {{{"outcome", "refused_service"}}, double(p.refused_service.load())},
                                               {{{"outcome", "refused_flood"}}, double(p.refused_flood.load())},
                                               {{{"outcome", "refused_busy"}}, double(p.refused_busy.load())}};
                                     }));
  OSMO_TRY(metrics_.counter_callback("osmo_peer_stream_frames_refused_total",
                                     "Frames of encrypted peer streams that failed their tag or header check "
                                     "(the stream was closed), by the pumps of this daemon's streams",
                                     [] { return Samples{{{}, double(pump_counters().frames_refused.load())}}; }));
  OSMO_TRY(metrics_.counter_callback("osmo_peer_streams_cut_total",
                                     "Encrypted peer streams whose TCP connection ended without an end frame "
                                     "(a truncated stream: peer died, or an attacker's FIN/RST)",
                                     [] { return Samples{{{}, double(pump_counters().streams_cut.load())}}; }));
  OSMO_TRY(metrics_.counter_callback("osmo_control_requests_total", "Requests served on the control socket",
                                     [this]() -> Samples { return {{{}, double(control_.requests_served())}}; }));
  return ok_status();
}

Status Daemon::start_metrics_endpoint() {
  if (!config_.metrics_listen) return ok_status();
  const env::Endpoint& ep = *config_.metrics_listen;
  OSMO_ASSIGN_OR_RETURN(auto addr, resolve_endpoint(ep));
  UniqueFd fd(::socket(addr.first.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("metrics endpoint {}: socket", ep.str());
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr.first), addr.second) != 0)
    return errno_error("metrics endpoint: bind TCP {}", ep.str());
  if (::listen(fd.get(), 16) != 0) return errno_error("metrics endpoint {}: listen", ep.str());
  OSMO_ASSIGN_OR_RETURN(metrics_endpoint_,
                        metrics::HttpEndpoint::start(std::move(fd), [this] { return metrics_.expose(); }));
  log_.info("metrics on http://{}/metrics", ep.str());
  return ok_status();
}

void Daemon::add_control(std::string op, ControlHandler handler) { control_.add(std::move(op), std::move(handler)); }
void Daemon::add_peer(std::string service, PeerHandler handler) { peers_.add(std::move(service), std::move(handler)); }
void Daemon::set_job_counter(std::function<std::uint32_t()> counter) { job_counter_ = std::move(counter); }
void Daemon::set_guest_counter(std::function<std::uint32_t()> counter) { guest_counter_ = std::move(counter); }

BalanceSettings Daemon::balance_settings() const {
  return BalanceSettings{config_.balance, config_.balance_interval_ms, config_.drain_grace_ms};
}

void Daemon::set_draining(bool on) {
  if (draining_.exchange(on) != on) log_.info("{}", on ? "draining: taking no new work, moving guests away" : "drain ended: taking work again");
  // The main loop samples at its next tick (10 ms), so the flag goes out with the next load
  // message; the sampler and the estimator belong to the main loop's thread.
  resample_now_ = true;
}

std::uint32_t Daemon::guests() const { return guest_counter_ ? guest_counter_() : 0; }

// `osmo drain [NODE] [--stop]`: this node, or another one through its daemon (peer node.drain).
Result<Json> Daemon::control_drain(const Json& req, ControlContext& ctx) {
  if (ctx.peer.uid != 0 && ctx.peer.uid != ::geteuid())
    return make_error("only root or the daemon's own user may drain a node");
  const std::string node = req.value("node", "");
  const bool on = req.value("on", true);
  if (node.empty() || node == config_.name) {
    set_draining(on);
    return Json{{"node", config_.name}, {"draining", draining()}, {"guests", guests()}};
  }
  std::optional<gossip::MemberView> where;
  for (const auto& m : members())
    if (m.name == node) where = m;
  if (!where) return make_error("no node named {} in the cluster", node);
  if (where->state != gossip::MemberState::kAlive)
    return make_error("node {} is {}", node, gossip::to_string(where->state));
  OSMO_ASSIGN_OR_RETURN(UniqueFd fd, dial_peer(where->addr, "node.drain", Json{{"on", on}}, kDrainRequestTimeoutMs));
  platform::set_receive_timeout(fd.get(), kDrainRequestTimeoutMs);
  std::string pending;
  OSMO_ASSIGN_OR_RETURN(std::string line, recv_line(fd.get(), pending, nullptr, 1u << 16));
  auto j = Json::parse(line, nullptr, false);
  if (line.empty() || j.is_discarded() || !j.is_object())
    return make_error("node {} did not confirm the drain", node);
  return j;
}

std::vector<gossip::MemberView> Daemon::members() const {
  std::lock_guard lk(gossip_mu_);
  return node_->members();
}

Result<UniqueFd> Daemon::dial_peer(const env::Endpoint& to, const std::string& service, const Json& header,
                                   int timeout_ms, DialFailure* why) {
  Json h = header;
  h["service"] = service;
  return daemon::dial_peer(config_.name, key_, to, h, timeout_ms, why, config_.peer_encryption);
}

void Daemon::sample_load() {
  auto s = sampler_.sample();
  if (!s.ok()) {
    log_.warn("load sample failed: {}", s.error().str());
    return;
  }
  // The simulator feeds its nodes through the same cluster_view::load_info_from_sample.
  cluster_view::LocalSample sample;
  sample.runnable = s->runnable;
  sample.cpus = s->cpus;
  sample.speed = speed_override_ > 0 ? speed_override_ : s->speed;
  sample.mem_free_mb = s->mem_free_mb;
  sample.mem_total_mb = s->mem_total_mb;
  sample.jobs = job_counter_ ? job_counter_() : 0;
  sample.draining = draining_.load();
  sample.auto_migrations = config_.balance;
  const gossip::LoadInfo info =
      cluster_view::load_info_from_sample(sample, clock_.now_ms(), estimator_);
  {
    std::lock_guard lk(sample_mu_);
    last_load_ = info;
  }
  std::lock_guard lk(gossip_mu_);
  node_->set_local_load(info);
}

Json Daemon::nodes_json() const {
  Json arr = Json::array();
  for (const auto& m : members()) {
    Json j{{"name", m.name},
           {"state", gossip::to_string(m.state)},
           {"addr", m.addr.str()},
           {"incarnation", m.incarnation},
           {"self", m.is_self},
           {"state_age_ms", m.state_age_ms}};
    if (m.load) {
      j["draining"] = (m.load->flags & gossip::kLoadFlagDraining) != 0;
      j["balance"] = (m.load->flags & gossip::kLoadFlagNoAutoMigration) == 0;
      j["cpus"] = m.load->cpus;
      j["load"] = m.load->load;
      j["runnable"] = m.load->runnable;
      j["speed"] = m.load->speed;
      j["mem_free_mb"] = m.load->mem_free_mb;
      j["mem_total_mb"] = m.load->mem_total_mb;
      j["jobs"] = m.load->jobs;
      j["age_ms"] = m.load_age_ms;
    } else {
      j["cpus"] = nullptr;
      j["load"] = nullptr;
      j["mem_free_mb"] = nullptr;
      j["age_ms"] = nullptr;
    }
    arr.push_back(std::move(j));
  }
  return arr;
}

Json Daemon::status_json() const {
  gossip::Counters c;
  {
    std::lock_guard lk(gossip_mu_);
    c = node_->counters();
  }
  const PeerCounters& p = peers_.counters();
  return Json{{"name", config_.name},
              {"version", kVersion},
              {"advertise", config_.advertise.str()},
              {"load_scope", load_description_},
              {"uptime_ms", clock_.now_ms() - started_ms_},
              {"draining", draining()},
              {"guests", guests()},
              {"balance", config_.balance},
              {"gossip",
               {{"received", c.received},
                {"sent", c.sent},
                {"dropped_bad_mac", c.dropped_bad_mac},
                {"dropped_bad_version", c.dropped_bad_version},
                {"dropped_malformed", c.dropped_malformed},
                {"dropped_foreign", c.dropped_foreign},
                {"dropped_replay", c.dropped_replay},
                {"dropped_encryption_mismatch", c.dropped_encryption_mismatch},
                {"encrypted", config_.gossip_encryption}}},
              {"peer",
               {{"accepted", p.accepted.load()},
                {"refused_auth", p.refused_auth.load()},
                {"refused_service", p.refused_service.load()},
                {"refused_flood", p.refused_flood.load()},
                {"refused_busy", p.refused_busy.load()},
                {"encrypted", config_.peer_encryption},
                {"encrypted_streams", pump_counters().streams.load()},
                {"frames_refused", pump_counters().frames_refused.load()},
                {"streams_cut", pump_counters().streams_cut.load()}}},
              {"control_requests", control_.requests_served()}};
}

int Daemon::run() {
  sigset_t mask = daemon_signals();
  UniqueFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  UniqueFd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  itimerspec its{};
  its.it_interval.tv_nsec = kTickIntervalMs * 1'000'000L;
  its.it_value = its.it_interval;
  ::timerfd_settime(tfd.get(), 0, &its, nullptr);
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  for (int fd : {transport_.fd(), sfd.get(), tfd.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
  }

  env::TimeMs next_sample = clock_.now_ms() + kLoadSampleIntervalMs;
  env::TimeMs leave_deadline = -1;  // set by leave_now(): gossip lingers until then
  // A leave (SIGTERM, SIGINT, `osmo leave`) first drains: guests move away (the balance plugin
  // does it while draining() is set) until none is left or drain_grace_ms has passed. A second
  // signal during the drain leaves at once.
  env::TimeMs drain_deadline = -1;
  env::TimeMs next_drain_poll = 0;
  auto leave_now = [&](env::TimeMs now) {
    std::lock_guard lk(gossip_mu_);
    node_->leave();
    leave_deadline = now + kLeaveLingerMs;
  };
  auto begin_leaving = [&](env::TimeMs now, const std::string& why) {
    if (leave_deadline >= 0) return;
    (void)notify_service_manager("STOPPING=1");  // systemd: the stop has begun (drain, then leave)
    if (drain_deadline >= 0) {
      log_.info("{} during the drain: leaving the cluster now ({} guest(s) left)", why, guests());
      leave_now(now);
      return;
    }
    const std::uint32_t g = guests();
    if (config_.drain_grace_ms > 0 && g > 0) {
      log_.info("{}: moving {} guest job(s) away (at most {} ms), then leaving the cluster", why, g,
                config_.drain_grace_ms);
      set_draining(true);
      drain_deadline = now + config_.drain_grace_ms;
      return;
    }
    log_.info("{}: leaving the cluster", why);
    leave_now(now);
  };
  std::vector<std::uint8_t> datagram;
  env::Endpoint from;
  for (;;) {
    epoll_event events[8];
    int n = ::epoll_wait(ep.get(), events, 8, 100);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == tfd.get()) {
        std::uint64_t expirations = 0;
        (void)!::read(tfd.get(), &expirations, sizeof expirations);
      } else if (fd == sfd.get()) {
        signalfd_siginfo si{};
        while (::read(sfd.get(), &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGPIPE || si.ssi_signo == SIGHUP) continue;
          begin_leaving(clock_.now_ms(), fmt::format("signal {}", strsignal(static_cast<int>(si.ssi_signo))));
        }
      } else if (fd == transport_.fd()) {
        std::lock_guard lk(gossip_mu_);
        // Bounded per wake-up so a flood cannot starve timers.
        for (int k = 0; k < 256 && transport_.receive(&from, &datagram); ++k) node_->on_datagram(from, datagram);
      }
    }
    env::TimeMs now = clock_.now_ms();
    if (leave_requested_.exchange(false)) begin_leaving(now, "leave requested over the control socket");
    if (drain_deadline >= 0 && leave_deadline < 0 && now >= next_drain_poll) {
      next_drain_poll = now + kDrainPollMs;
      const std::uint32_t g = guests();
      if (g == 0) {
        log_.info("drained: no guest job left; leaving the cluster");
        leave_now(now);
      } else if (now >= drain_deadline) {
        log_.warn("drain grace time over with {} guest job(s) left; leaving the cluster", g);
        leave_now(now);
      }
    }
    {
      std::lock_guard lk(gossip_mu_);
      node_->tick();
    }
    if ((now >= next_sample || resample_now_.exchange(false)) && leave_deadline < 0) {
      sample_load();
      next_sample = now + kLoadSampleIntervalMs;
    }
    if (leave_deadline >= 0 && now >= leave_deadline) break;
  }
  control_.stop();
  peers_.stop();
  log_.info("stopped");
  return 0;
}

}  // namespace osmo::daemon
