// SPDX-License-Identifier: GPL-2.0-or-later
// The home daemon's list of the `osmo run` processes that anchor jobs (anchor.hpp), so that a
// shepherd that took a job over on another node can reach its anchor directly: the shepherd dials
// the home daemon's `job.attach` peer service, and the daemon passes that stream, as it is, to the
// anchor over the anchor's registered control connection (SCM_RIGHTS); from then on the stream
// runs between the new node and `osmo run`, never through the daemon or the node the job left.
//
// A registration is a control connection kept open by `osmo run` (run.start with "anchor": true,
// or run.anchor after a daemon restart) with the job's id and its attach token (job_spec.hpp). An
// attach must present the same token: only a shepherd that holds the job's spec can take its
// stream. Several registrations may name one id (a local user may claim any id, but without the
// token it receives nothing); a registration ends when its connection closes. Thread-safe.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace osmo::run {

class AnchorRegistry {
 public:
  // Registrations at once, all jobs together (each holds one fd of the daemon).
  static constexpr std::size_t kMaxAnchors = 4096;

  // Checked before the registration's response is sent: room, and no live registration with the
  // same id and token.
  Status can_register(const std::string& id, const std::string& token);
  void add(const std::string& id, const std::string& token, uid_t uid, UniqueFd conn);

  // Passes `stream` to the anchor of job `id` whose token is `token`, with a line
  // {"attach": {"id", "epoch", "node"}}. Fails when there is none (then the caller tells the
  // attaching shepherd with a `rejected` frame).
  Status pass_attach(const std::string& id, const std::string& token, std::uint32_t epoch,
                     const std::string& from_node, int stream);

  // `osmo kill` through the anchor: sends the line {"signal": signo} to the anchors of job `id`
  // (an exact id or a unique prefix) registered by `requester` (any, for root); the anchor relays
  // it as a signal frame, held while the job is being moved, so it reaches the job wherever it
  // runs. Returns the job's id, or nullopt when no such anchor is registered here.
  Result<std::optional<std::string>> pass_signal(const std::string& id, int signo, uid_t requester);

  std::size_t size();

 private:
  struct Entry {
    std::string token;
    uid_t uid = 0;
    UniqueFd conn;
  };
  void prune_locked();

  std::mutex mu_;
  std::map<std::string, std::vector<Entry>> by_id_;
};

// true if both are equal, in time that does not depend on where they differ.
bool same_secret(const std::string& a, const std::string& b);

}  // namespace osmo::run
