// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/daemon.hpp"
#include "daemon/service_manager.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>

#include <cmath>
#include <cstring>

#include "base/version.hpp"
#include "cluster_view/local_load.hpp"
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
  for (const auto& plugin : plugins()) plugin(*this, *this);

  OSMO_TRY(peers_.start(config_.listen));
  OSMO_TRY(control_.start(config_.socket));
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

void Daemon::add_control(std::string op, ControlHandler handler) { control_.add(std::move(op), std::move(handler)); }
void Daemon::add_peer(std::string service, PeerHandler handler) { peers_.add(std::move(service), std::move(handler)); }
void Daemon::set_job_counter(std::function<std::uint32_t()> counter) { job_counter_ = std::move(counter); }

std::vector<gossip::MemberView> Daemon::members() const {
  std::lock_guard lk(gossip_mu_);
  return node_->members();
}

Result<UniqueFd> Daemon::dial_peer(const env::Endpoint& to, const std::string& service, const Json& header,
                                   int timeout_ms, DialFailure* why) {
  Json h = header;
  h["service"] = service;
  return daemon::dial_peer(config_.name, key_, to, h, timeout_ms, why);
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
  const gossip::LoadInfo info =
      cluster_view::load_info_from_sample(sample, clock_.now_ms(), estimator_);
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
                {"refused_service", p.refused_service.load()}}},
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
  env::TimeMs leave_deadline = -1;
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
          if (leave_deadline < 0) {
            log_.info("signal {}: leaving the cluster", strsignal(static_cast<int>(si.ssi_signo)));
            (void)notify_service_manager("STOPPING=1");
            std::lock_guard lk(gossip_mu_);
            node_->leave();
            leave_deadline = clock_.now_ms() + kLeaveLingerMs;
          }
        }
      } else if (fd == transport_.fd()) {
        std::lock_guard lk(gossip_mu_);
        // Bounded per wake-up so a flood cannot starve timers.
        for (int k = 0; k < 256 && transport_.receive(&from, &datagram); ++k) node_->on_datagram(from, datagram);
      }
    }
    env::TimeMs now = clock_.now_ms();
    if (leave_requested_.load() && leave_deadline < 0) {
      log_.info("leave requested over the control socket: leaving the cluster");
      (void)notify_service_manager("STOPPING=1");
      std::lock_guard lk(gossip_mu_);
      node_->leave();
      leave_deadline = now + kLeaveLingerMs;
    }
    {
      std::lock_guard lk(gossip_mu_);
      node_->tick();
    }
    if (now >= next_sample && leave_deadline < 0) {
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
