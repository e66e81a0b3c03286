// SPDX-License-Identifier: GPL-2.0-or-later
// The balancing loop and the target's reservation service (see balance_service.hpp).
//
// One automatic move, as two daemons see it:
//
//   source (overloaded)                                target
//   tick: sample jobs, decide_balance -> {job, target}
//   balance.reserve {job, loads, gain needed} ------->  accept_move on its own load + promises
//                                    <---------------  {accepted: true} (reserved) / {false, why}
//   ledger.record, migrate_local_job (job.migrate_in) ->  the job arrives: reservation settles
//   on failure: balance.reserve {cancel} ------------>  reservation dropped
//   cool-down, next tick
#include "balance/balance_service.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "balance/job_sampler.hpp"
#include "base/log.hpp"
#include "cluster_view/decisions.hpp"
#include "daemon/control_client.hpp"
#include "env/clock.hpp"
#include "env/random.hpp"
#include "migrate/migrate_service.hpp"
#include "migrate/movable.hpp"
#include "platform/linux/socket.hpp"
#include "policy/load_estimator.hpp"
#include "run/job_table.hpp"

namespace osmo::balance {
namespace {

using daemon::Json;

// Connect, handshake and the target's answer: it decides at once from memory.
constexpr int kReserveTimeoutMs = 3000;

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Json offer_to_json(const policy::MoveOffer& o) {
  return Json{{"job", o.job},
              {"source", o.source},
              {"reason", policy::to_string(o.reason)},
              {"cpu_share", o.cpu_share},
              {"mem_mb", o.mem_mb},
              {"source_load_before", o.source_load_before},
              {"source_load_after", o.source_load_after},
              {"required_gain", o.required_gain},
              {"cost_ms", o.cost_ms}};
}

Result<policy::MoveOffer> offer_from_json(const Json& j, const std::string& remote_node) {
  policy::MoveOffer o;
  try {
    o.job = j.at("job").get<std::string>();
    o.source = remote_node;  // the authenticated peer, not what the header claims
    const std::string reason = j.value("reason", "load");
    if (reason == "load") {
      o.reason = policy::MoveReason::kLoad;
    } else if (reason == "memory") {
      o.reason = policy::MoveReason::kMemory;
    } else if (reason == "drain") {
      o.reason = policy::MoveReason::kDrain;
    } else {
      return make_error("balance.reserve: unknown reason '{}'", reason);
    }
    o.cpu_share = j.at("cpu_share").get<double>();
    o.mem_mb = j.at("mem_mb").get<std::uint64_t>();
    o.source_load_before = j.at("source_load_before").get<double>();
    o.source_load_after = j.at("source_load_after").get<double>();
    o.required_gain = j.at("required_gain").get<double>();
    o.cost_ms = j.value("cost_ms", env::TimeMs{0});
  } catch (const Json::exception& e) {
    return make_error("balance.reserve: malformed offer: {}", e.what());
  }
  if (o.job.empty() || o.job.size() > 64) return make_error("balance.reserve: bad job id");
  if (!(o.cpu_share >= 0 && o.cpu_share <= 1024)) return make_error("balance.reserve: cpu_share out of range");
  return o;
}

class BalanceService : public std::enable_shared_from_this<BalanceService> {
 public:
  explicit BalanceService(daemon::DaemonApi& api)
      : api_(api),
        settings_(api.balance_settings()),
        log_(api.node_name(), "balance"),
        random_(env::make_system_random()),
        sampler_(
            api.node_name(),
            [this](const std::string& id) { return migrate::describe_local_job(api_.state_dir(), id); },
            [](const run::JobRecord& rec) { return migrate::check_movable(rec).ok(); }) {}

  void install(daemon::Services& s) {
    auto self = shared_from_this();
    s.add_peer("balance.reserve", [self](UniqueFd conn, const Json& h, const daemon::PeerContext& ctx) {
      (void)daemon::send_line(conn.get(), self->on_reserve(h, ctx).dump() + "\n", {});
    });
    s.add_control("balance.status", [self](const Json&, daemon::ControlContext&) -> Result<Json> {
      return self->status();
    });
    s.set_guest_counter([self] { return self->count_guests(); });
    std::thread([self] { self->loop(); }).detach();
  }

 private:
  void loop() {
    log_.info("balancing loop: every {} ms, automatic migrations {}", settings_.interval_ms,
              settings_.enabled ? "on" : "off (balance = false)");
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(settings_.interval_ms));
      tick();
    }
  }

  void tick() {
    const env::TimeMs now = clock_.now_ms();
    const auto view = api_.members();
    auto local = cluster_view::local_state_from_view(view, last_out_ms_);
    if (!local) return;  // the daemon has not sampled its load yet
    {
      std::lock_guard lk(book_mu_);
      departures_.prune(now);
      local->departed_runnable = departures_.still_counted(now);
    }
    auto listed = run::list_jobs(api_.state_dir());
    if (!listed.ok()) {
      log_.warn("cannot list the jobs here: {}", listed.error().str());
      return;
    }
    const auto sampled = sampler_.update(*listed, now, unix_now_ms(), local->runnable,
                                         policy::capacity(local->cpus, local->speed));
    guests_ = sampler_.guests_to_move();
    {
      std::lock_guard lk(book_mu_);
      for (const auto& s : sampled) book_.arrived(s.id, now);
      book_.prune(now);
      staying_.clear();
      for (const auto& s : sampled)
        if (s.described && s.info.pinned) staying_.insert(s.id);
    }
    ledger_.prune(now);
    std::vector<policy::JobInfo> infos;
    infos.reserve(sampled.size());
    for (const auto& s : sampled) infos.push_back(s.info);
    std::optional<policy::Move> move;
    if (api_.draining()) {
      move = cluster_view::decide_drain_move(*local, view, infos, ledger_, now, random_);
    } else if (settings_.enabled) {
      move = cluster_view::decide_move(*local, view, infos, ledger_, now, random_, config_);
    }
    if (!move) return;
    for (const auto& s : sampled)
      if (s.info.id == move->job_id) carry_out(*move, s.id, view);
  }

  void carry_out(const policy::Move& m, const std::string& id, const std::vector<gossip::MemberView>& view) {
    const gossip::MemberView* target = nullptr;
    for (const auto& v : view)
      if (v.name == m.target) target = &v;
    if (target == nullptr) return;
    const policy::MoveOffer offer = cluster_view::offer_for(m, id, api_.node_name());
    // How fresh the figure this decision rested on was (issue 10: under 1.5 s on average).
    ++decisions_;
    decision_age_sum_ms_ += static_cast<std::uint64_t>(std::max<env::TimeMs>(m.target_load_age_ms, 0));
    auto verdict = ask_target(*target, offer_to_json(offer));
    const env::TimeMs asked_at = clock_.now_ms();
    if (!verdict.ok() || !verdict->value("accepted", false)) {
      const std::string why = verdict.ok() ? verdict->value("why", "?") : verdict.error().str();
      log_.info("job={} not moved to {} ({}): {}", id, m.target, policy::to_string(m.reason), why);
      sampler_.attempt_failed(id, asked_at);
      ++refused_;
      return;
    }
    const std::string gain = m.reason == policy::MoveReason::kLoad
                                 ? fmt::format(", gain {:.2f} > {:.2f}", m.gain, m.required_gain)
                                 : std::string();
    log_.info("job={} moving to {} ({}): load here {:.2f} -> {:.2f}, there {:.2f} after (its own "
              "figure, promises included; ours was {} ms old){}, cost ~{} ms",
              id, m.target, policy::to_string(m.reason), m.source_load_before, m.source_load_after,
              verdict->value("load_after", 0.0), m.target_load_age_ms, gain, m.cost_ms);
    ledger_.record(m.target, asked_at, m.cpu_share, m.mem_mb);
    last_out_ms_ = asked_at;
    auto moved = migrate::migrate_local_job(api_, id, m.target);
    const env::TimeMs done = clock_.now_ms();
    last_out_ms_ = done;  // the cool-down counts from the end of the move
    if (!moved.ok()) {
      log_.warn("job={} move to {} failed: {}", id, m.target, moved.error().str());
      sampler_.attempt_failed(id, done);
      ++failed_;
      (void)ask_target(*target, Json{{"cancel", true}, {"job", id}});
      return;
    }
    ++moves_;
    {
      std::lock_guard lk(book_mu_);
      departures_.record(done, m.cpu_share);
    }
    log_.info("job={} moved to {} in {} ms", id, m.target, done - asked_at);
  }

  // Guest jobs a drain still has to move, counted now (the daemon asks right after `osmo drain`
  // and while a SIGTERM waits: a guest that arrived since the last tick counts too). Jobs the
  // last tick found pinned or unmovable do not.
  std::uint32_t count_guests() {
    auto listed = run::list_jobs(api_.state_dir());
    if (!listed.ok()) return guests_.load();
    std::uint32_t n = 0;
    for (const auto& j : *listed) {
      if (j.state == "exiting" || j.rec.home.empty() || j.rec.home == api_.node_name()) continue;
      {
        std::lock_guard lk(book_mu_);
        if (staying_.count(j.rec.id) != 0) continue;
      }
      // Not seen by a tick yet: its spec says whether it is pinned (a few ms from its shepherd).
      auto spec = migrate::describe_local_job(api_.state_dir(), j.rec.id);
      if (spec.ok() && spec->value("no_migrate", false)) continue;
      ++n;
    }
    return n;
  }

  Result<Json> ask_target(const gossip::MemberView& target, const Json& header) {
    OSMO_ASSIGN_OR_RETURN(UniqueFd fd, api_.dial_peer(target.addr, "balance.reserve", header, kReserveTimeoutMs));
    platform::set_receive_timeout(fd.get(), kReserveTimeoutMs);
    std::string pending;
    OSMO_ASSIGN_OR_RETURN(std::string line, daemon::recv_line(fd.get(), pending, nullptr, 1u << 16));
    auto j = Json::parse(line, nullptr, false);
    if (line.empty() || j.is_discarded() || !j.is_object())
      return make_error("node {} did not answer the reservation", target.name);
    return j;
  }

  // The target's half: judge the offer on our own figures and promises, reserve on yes.
  Json on_reserve(const Json& h, const daemon::PeerContext& ctx) {
    const env::TimeMs now = clock_.now_ms();
    if (h.value("cancel", false)) {
      std::lock_guard lk(book_mu_);
      book_.cancel(h.value("job", ""));
      return Json{{"accepted", false}, {"why", "cancelled"}};
    }
    auto offer = offer_from_json(h, ctx.remote_node);
    if (!offer.ok()) return Json{{"accepted", false}, {"why", offer.error().str()}};
    if (api_.draining()) return Json{{"accepted", false}, {"why", "this node is draining"}};
    if (!settings_.enabled && offer->reason != policy::MoveReason::kDrain)
      return Json{{"accepted", false}, {"why", "this node takes no automatic migration (balance = false)"}};
    const auto view = api_.members();
    std::lock_guard lk(book_mu_);
    const policy::Verdict v =
        cluster_view::judge_offer(*offer, view, book_, now, config_, departures_.still_counted(now));
    if (v.accepted) {
      book_.reserve(*offer, now);
      ++reserved_;
    } else {
      ++refusals_sent_;
    }
    log_.info("job={} from {} ({}): {} - {}", offer->job, offer->source, policy::to_string(offer->reason),
              v.accepted ? "reserved" : "refused", v.why);
    return Json{{"accepted", v.accepted}, {"why", v.why}, {"load_after", v.load_after}};
  }

  Json status() {
    std::lock_guard lk(book_mu_);
    const auto p = book_.pending(clock_.now_ms());
    return Json{{"enabled", settings_.enabled},
                {"interval_ms", settings_.interval_ms},
                {"drain_grace_ms", settings_.drain_grace_ms},
                {"draining", api_.draining()},
                {"guests", guests_.load()},  // at the last tick
                {"moves", moves_.load()},
                {"refused", refused_.load()},
                {"failed", failed_.load()},
                {"reserved", reserved_.load()},
                {"refusals_sent", refusals_sent_.load()},
                {"promised_jobs", p.jobs},
                {"promised_cpu", p.cpu},
                {"decisions", decisions_.load()},
                {"decision_load_age_mean_ms",
                 decisions_.load() > 0 ? Json(static_cast<double>(decision_age_sum_ms_.load()) /
                                              static_cast<double>(decisions_.load()))
                                       : Json(nullptr)}};
  }

  daemon::DaemonApi& api_;
  const daemon::BalanceSettings settings_;
  Logger log_;
  env::SystemClock clock_;
  env::SeededRandom random_;          // the balancing thread's
  policy::BalanceConfig config_;
  JobSampler sampler_;                // the balancing thread's
  policy::PlacementLedger ledger_;    // the balancing thread's: what we sent, not yet visible
  std::optional<env::TimeMs> last_out_ms_;
  std::mutex book_mu_;
  policy::ReservationBook book_;      // guarded by book_mu_: what we promised to take
  policy::DepartureLog departures_;   // guarded by book_mu_: what we sent away lately
  std::set<std::string> staying_;     // guarded by book_mu_: jobs pinned or unmovable (last tick)
  std::atomic<std::uint32_t> guests_{0};
  std::atomic<std::uint64_t> moves_{0}, refused_{0}, failed_{0}, reserved_{0}, refusals_sent_{0};
  // Moves decided (offered to a target) and the summed age of the target's load figure then.
  std::atomic<std::uint64_t> decisions_{0}, decision_age_sum_ms_{0};
};

}  // namespace

void install_balance_service(daemon::Services& services, daemon::DaemonApi& api) {
  std::make_shared<BalanceService>(api)->install(services);
}

}  // namespace osmo::balance
