// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/config.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "base/unique_fd.hpp"
#include "wire/mac.hpp"

namespace osmo::daemon {
namespace {

bool cli_has(const std::vector<std::string>& set_on_cli, const std::string& key) {
  return std::find(set_on_cli.begin(), set_on_cli.end(), key) != set_on_cli.end();
}

// The first IPv4 address of an interface that is up and not loopback.
std::optional<std::string> first_routable_ipv4() {
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* i = ifs; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char host[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, host, sizeof host);
    found = host;
  }
  ::freeifaddrs(ifs);
  return found;
}

}  // namespace

// Every key the TOML file may hold (the branches below), for the message about an unknown one.
constexpr std::array<std::string_view, 16> kConfigKeys = {
    "name", "listen", "advertise", "join", "secret_file", "state_dir", "socket", "load_scope", "speed", "log_level",
    "gossip_encryption", "peer_encryption", "balance", "balance_interval_ms", "drain_grace_ms", "metrics_listen"};

Status apply_config_file(const std::string& path, const std::vector<std::string>& set_on_cli,
                         DaemonConfig* config) {
  toml::table table;
  // toml++ says only "File could not be opened for reading"; the reason (missing, permission) is
  // what the administrator needs.
  if (UniqueFd probe(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); !probe)
    return make_error("config {}: cannot open it: {} (fix the path given to --config)", path,
                      std::strerror(errno));
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return make_error("config {}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column,
                      e.description());
  }
  for (auto&& [key, node] : table) {
    std::string k(key.str());
    auto want_string = [&](std::string* out) -> Status {
      if (!node.is_string()) return make_error("config {}: '{}' must be a string", path, k);
      if (!cli_has(set_on_cli, k)) *out = node.as_string()->get();
      return ok_status();
    };
    if (k == "name") {
      OSMO_TRY(want_string(&config->name));
    } else if (k == "listen") {
      OSMO_TRY(want_string(&config->listen));
    } else if (k == "advertise") {
      OSMO_TRY(want_string(&config->advertise));
    } else if (k == "secret_file") {
      OSMO_TRY(want_string(&config->secret_file));
    } else if (k == "state_dir") {
      OSMO_TRY(want_string(&config->state_dir));
    } else if (k == "socket") {
      OSMO_TRY(want_string(&config->socket));
    } else if (k == "load_scope") {
      OSMO_TRY(want_string(&config->load_scope));
    } else if (k == "log_level") {
      OSMO_TRY(want_string(&config->log_level));
    } else if (k == "metrics_listen") {
      OSMO_TRY(want_string(&config->metrics_listen));
    } else if (k == "join") {
      const toml::array* arr = node.as_array();
      if (arr == nullptr) return make_error("config {}: 'join' must be an array of strings", path);
      if (cli_has(set_on_cli, k)) continue;
      config->join.clear();
      for (auto&& item : *arr) {
        if (!item.is_string()) return make_error("config {}: 'join' must be an array of strings", path);
        config->join.push_back(item.as_string()->get());
      }
    } else if (k == "gossip_encryption") {
      auto v = node.value<bool>();
      if (!v) return make_error("config {}: 'gossip_encryption' must be true or false", path);
      if (!cli_has(set_on_cli, k)) config->gossip_encryption = *v;
    } else if (k == "peer_encryption") {
      auto v = node.value<bool>();
      if (!v) return make_error("config {}: 'peer_encryption' must be true or false", path);
      if (!cli_has(set_on_cli, k)) config->peer_encryption = *v;
    } else if (k == "balance") {
      auto v = node.value<bool>();
      if (!v) return make_error("config {}: 'balance' must be true or false", path);
      if (!cli_has(set_on_cli, k)) config->balance = *v;
    } else if (k == "balance_interval_ms" || k == "drain_grace_ms") {
      auto v = node.value<std::int64_t>();
      if (!v || *v < 0 || *v > 24 * 3600 * 1000)
        return make_error("config {}: '{}' must be a number of milliseconds", path, k);
      if (!cli_has(set_on_cli, k))
        (k == "balance_interval_ms" ? config->balance_interval_ms : config->drain_grace_ms) = static_cast<int>(*v);
    } else if (k == "speed") {
      auto v = node.value<double>();
      if (!v) return make_error("config {}: 'speed' must be a number", path);
      if (!cli_has(set_on_cli, k)) config->speed = *v;
    } else {
      return make_error("config {}: unknown key '{}' (known keys: {})", path, k,
                        fmt::join(kConfigKeys, ", "));
    }
  }
  return ok_status();
}

Result<ResolvedConfig> resolve(const DaemonConfig& config) {
  ResolvedConfig out;
  out.name = config.name;
  if (out.name.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) return errno_error("gethostname");
    out.name = host;
  }
  if (out.name.size() > 64 ||
      !std::all_of(out.name.begin(), out.name.end(),
                   [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }))
    return make_error("node name '{}': use at most 64 letters, digits, '-', '_' or '.'", out.name);

  OSMO_ASSIGN_OR_RETURN(out.listen, env::parse_endpoint(config.listen, kDefaultPort));
  if (!config.advertise.empty()) {
    OSMO_ASSIGN_OR_RETURN(out.advertise, env::parse_endpoint(config.advertise, out.listen.port));
  } else if (out.listen.host == "0.0.0.0" || out.listen.host == "::") {
    auto ip = first_routable_ipv4();
    if (!ip) return make_error("listening on {} but no non-loopback address to advertise: pass --advertise", out.listen.str());
    out.advertise = env::Endpoint{*ip, out.listen.port};
  } else {
    out.advertise = out.listen;
  }
  for (const auto& j : config.join) {
    OSMO_ASSIGN_OR_RETURN(env::Endpoint ep, env::parse_endpoint(j, kDefaultPort));
    out.join.push_back(std::move(ep));
  }

  struct stat st{};
  if (::stat(config.secret_file.c_str(), &st) != 0)
    return errno_error("cluster secret {} (create one: head -c 32 /dev/urandom > FILE; chmod 600 FILE)",
                       config.secret_file);
  if ((st.st_mode & 077) != 0)
    return make_error("cluster secret {} is readable by others (mode {:o}): chmod 600 it",
                      config.secret_file, st.st_mode & 0777);
  std::ifstream in(config.secret_file, std::ios::binary);
  out.secret.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (Status key_ok = wire::check_secret(out.secret); !key_ok.ok()) {
    std::fill(out.secret.begin(), out.secret.end(), 0);
    return make_error("{}: {}", config.secret_file, key_ok.error().message);
  }
  out.state_dir = config.state_dir;
  out.gossip_encryption = config.gossip_encryption;
  out.peer_encryption = config.peer_encryption;
  out.socket = config.socket;
  if (config.balance_interval_ms < kMinBalanceIntervalMs)
    return make_error("balance interval {} ms: at least {} ms", config.balance_interval_ms, kMinBalanceIntervalMs);
  if (config.drain_grace_ms < 0) return make_error("drain grace {} ms: must not be negative", config.drain_grace_ms);
  out.balance = config.balance;
  out.balance_interval_ms = config.balance_interval_ms;
  out.drain_grace_ms = config.drain_grace_ms;
  if (!config.metrics_listen.empty()) {
    auto ep = env::parse_endpoint(config.metrics_listen, kDefaultMetricsPort);
    if (!ep.ok()) return make_error("metrics_listen '{}': {}", config.metrics_listen, ep.error().str());
    out.metrics_listen = *ep;
  }
  return out;
}

}  // namespace osmo::daemon
