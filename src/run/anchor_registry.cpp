// SPDX-License-Identifier: GPL-2.0-or-later
// The home daemon's registrations of job anchors (see anchor_registry.hpp).
#include "run/anchor_registry.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "daemon/control_client.hpp"
#include "platform/linux/socket.hpp"

namespace osmo::run {

namespace {

// An anchor never writes on its registration: anything readable there (EOF above all) means the
// `osmo run` process is gone.
bool connection_alive(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 0;
}

}  // namespace

bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

void AnchorRegistry::prune_locked() {
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    std::erase_if(it->second, [](const Entry& e) { return !e.conn.valid() || !connection_alive(e.conn.get()); });
    it = it->second.empty() ? by_id_.erase(it) : std::next(it);
  }
}

Status AnchorRegistry::can_register(const std::string& id, const std::string& token) {
  if (id.empty() || token.empty()) return make_error("an anchor registration needs a job id and its token");
  std::lock_guard lk(mu_);
  prune_locked();
  std::size_t n = 0;
  for (const auto& [_, v] : by_id_) n += v.size();
  if (n >= kMaxAnchors) return make_error("this node already anchors {} jobs", n);
  if (auto it = by_id_.find(id); it != by_id_.end())
    for (const auto& e : it->second)
      if (same_secret(e.token, token)) return make_error("job {} already has an anchor here", id);
  return ok_status();
}

void AnchorRegistry::add(const std::string& id, const std::string& token, uid_t uid, UniqueFd conn) {
  // A stopped `osmo run` (Ctrl-Z) does not read: a passed stream must not block the daemon.
  platform::set_send_timeout(conn.get(), 2000);
  std::lock_guard lk(mu_);
  by_id_[id].push_back(Entry{token, uid, std::move(conn)});
}

Status AnchorRegistry::pass_attach(const std::string& id, const std::string& token, std::uint32_t epoch,
                                   const std::string& from_node, int stream) {
  std::lock_guard lk(mu_);
  prune_locked();
  auto it = by_id_.find(id);
  if (it != by_id_.end()) {
    for (auto& e : it->second) {
      if (!same_secret(e.token, token)) continue;
      const nlohmann::json line{{"attach", {{"id", id}, {"epoch", epoch}, {"node", from_node}}}};
      const int fds[] = {stream};
      if (auto s = daemon::send_line(e.conn.get(), line.dump(), fds); !s.ok()) {
        e.conn.reset();  // gone: pruned next time
        return make_error("the anchor of job {} is gone ({})", id, s.error().str());
      }
      return ok_status();
    }
  }
  return make_error("no anchor for job {} here (its osmo run has ended, or the token is wrong)", id);
}

Result<std::optional<std::string>> AnchorRegistry::pass_signal(const std::string& id, int signo,
                                                              uid_t requester) {
  std::lock_guard lk(mu_);
  prune_locked();
  auto owned = [&](const std::vector<Entry>& v) {
    return std::any_of(v.begin(), v.end(), [&](const Entry& e) { return requester == 0 || e.uid == requester; });
  };
  std::vector<Entry>* match = nullptr;
  std::string match_id;
  if (auto it = by_id_.find(id); it != by_id_.end() && owned(it->second)) {
    match = &it->second;
    match_id = id;
  } else {
    for (auto& [key, v] : by_id_) {
      if (key.rfind(id, 0) != 0 || !owned(v)) continue;
      if (match != nullptr) return make_error("job id prefix '{}' is ambiguous", id);
      match = &v;
      match_id = key;
    }
  }
  if (match == nullptr) return std::optional<std::string>();
  const std::string line = nlohmann::json{{"signal", signo}}.dump();
  bool sent = false;
  for (auto& e : *match) {
    if (requester != 0 && e.uid != requester) continue;
    if (daemon::send_line(e.conn.get(), line, {}).ok())
      sent = true;
    else
      e.conn.reset();
  }
  return sent ? std::optional<std::string>(match_id) : std::optional<std::string>();
}

std::size_t AnchorRegistry::size() {
  std::lock_guard lk(mu_);
  prune_locked();
  std::size_t n = 0;
  for (const auto& [_, v] : by_id_) n += v.size();
  return n;
}

}  // namespace osmo::run
