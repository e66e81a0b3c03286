// SPDX-License-Identifier: GPL-2.0-or-later
// osmod: one per node, no master anywhere. Owns the gossip node (membership and load), samples
// the local load, serves the control socket for the command-line tools and the peer port for
// other daemons, and hosts the plugins of other parts (jobs, migration).
//
// Threads: the main loop (UDP, timers, signals) drives gossip; the control and peer servers run
// one thread per connection. The gossip node is guarded by one mutex.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "daemon/config.hpp"
#include "daemon/control_server.hpp"
#include "daemon/peer_link.hpp"
#include "daemon/services.hpp"
#include "daemon/udp_transport.hpp"
#include "env/clock.hpp"
#include "env/random.hpp"
#include "gossip/node.hpp"
#include "metrics/http_endpoint.hpp"
#include "metrics/registry.hpp"
#include "platform/linux/load_sampler.hpp"
#include "policy/load_estimator.hpp"

namespace osmo::daemon {

// How often the main loop wakes up to tick gossip: well under the gossip timers (>= 200 ms).
inline constexpr int kTickIntervalMs = 10;
// How often the local load is sampled and smoothed; the estimator copes with irregular samples.
inline constexpr int kLoadSampleIntervalMs = 100;
// After a graceful leave, keep gossiping this long so the announcement reaches everyone.
inline constexpr int kLeaveLingerMs = 1500;
// While a leave waits for the drain, how often the guests left are counted (a /proc walk).
inline constexpr int kDrainPollMs = 250;

class Daemon final : public Services, public DaemonApi {
 public:
  static Result<std::unique_ptr<Daemon>> create(const ResolvedConfig& config, const std::string& load_scope,
                                                double speed_override);
  ~Daemon() override;

  // Runs until SIGTERM/SIGINT (graceful leave) and returns the exit status.
  int run();

  // Services
  void add_control(std::string op, ControlHandler handler) override;
  void add_peer(std::string service, PeerHandler handler) override;
  void set_job_counter(std::function<std::uint32_t()> counter) override;
  void set_guest_counter(std::function<std::uint32_t()> counter) override;

  // DaemonApi
  const std::string& node_name() const override { return config_.name; }
  env::Endpoint advertise() const override { return config_.advertise; }
  std::vector<gossip::MemberView> members() const override;
  const std::filesystem::path& state_dir() const override { return state_dir_; }
  const std::array<std::uint8_t, 32>& key() const override { return key_; }
  bool peer_encryption() const override { return config_.peer_encryption; }
  Result<UniqueFd> dial_peer(const env::Endpoint& to, const std::string& service, const Json& header,
                             int timeout_ms, DialFailure* why = nullptr) override;
  BalanceSettings balance_settings() const override;
  bool draining() const override { return draining_.load(); }
  void set_draining(bool on) override;
  metrics::Registry& metrics() override { return metrics_; }
  std::string control_socket() const override { return config_.socket; }

 private:
  Status register_metrics();
  Status start_metrics_endpoint();
  Daemon(const ResolvedConfig& config, platform::LoadSampler sampler, double speed_override);
  Status start();
  void sample_load();
  Result<Json> control_drain(const Json& req, ControlContext& ctx);
  std::uint32_t guests() const;
  Json nodes_json() const;
  Json status_json() const;

  ResolvedConfig config_;
  std::filesystem::path state_dir_;
  Key key_{};
  Logger log_;
  env::SystemClock clock_;
  env::SeededRandom random_;
  UdpTransport transport_;
  mutable std::mutex gossip_mu_;
  std::unique_ptr<gossip::Node> node_;  // guarded by gossip_mu_
  platform::LoadSampler sampler_;
  std::string load_description_;
  policy::LoadEstimator estimator_;
  double speed_override_ = 0;
  std::function<std::uint32_t()> job_counter_;
  std::function<std::uint32_t()> guest_counter_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> resample_now_{false};  // set_draining: sample (and gossip the flag) at once
  ControlServer control_;
  PeerServer peers_;
  env::TimeMs started_ms_ = 0;
  std::atomic<bool> leave_requested_{false};  // set by the "leave" control op
  metrics::Registry metrics_;
  mutable std::mutex sample_mu_;
  gossip::LoadInfo last_load_{};                            // the last sample, guarded by sample_mu_
  std::unique_ptr<metrics::HttpEndpoint> metrics_endpoint_;  // when metrics_listen is set
};

}  // namespace osmo::daemon
