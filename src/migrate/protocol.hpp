// SPDX-License-Identifier: GPL-2.0-or-later
// What the two sides of a migration say to each other (docs/migration.md), and the small
// local exchanges around it:
//   - the order the source daemon gives the job's shepherd (its control socket, JSON lines, the
//     target stream passed as an fd) and the order the target daemon gives the new shepherd
//     (a JSON memfd, with the stream on fd 3);
//   - the messages on the sealed stream between the source and target shepherds (JSON in
//     kMessage chunks; the image and the stdin left unread travel as sealed byte streams).
// Message names are the protocol: add new ones, never change the meaning of an old one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "wire/sealed_stream.hpp"

namespace osmo::migrate {

inline constexpr const char* kSealPurpose = "osmo-migrate";
inline constexpr const char* kIncomingSubcommand = "__job-migrate-in";

// Messages on the sealed stream ("t" field). Source = initiator, target = responder.
//   target -> source: ready, refused, restored, attached, failed, running
//   source -> target: method (precopy.hpp; then pre-copy's rounds), (image bytes, end),
//                     stdio + (stdin bytes, end), abort
namespace msg {
inline constexpr const char* kReady = "ready";        // the target shepherd runs; send the image
inline constexpr const char* kRefused = "refused";    // {error}: the target will not take the job
inline constexpr const char* kRestored = "restored";  // {ms}: restored and held, not running
inline constexpr const char* kAttached = "attached";  // home accepted the target: it is the job now
inline constexpr const char* kFailed = "failed";      // {error}: the target gave up; it runs nothing
inline constexpr const char* kRunning = "running";    // the restored job runs at the target
inline constexpr const char* kStdio = "stdio";        // {stdout, stderr, stdin_offset}: offsets at the switch
inline constexpr const char* kAbort = "abort";        // {error}: the source gave up before the switch
}  // namespace msg

std::string to_hex(std::span<const std::uint8_t> bytes);
Result<std::vector<std::uint8_t>> from_hex(const std::string& text, std::size_t want_bytes, const char* what);
Result<wire::SessionId> session_from_hex(const std::string& text);
Result<wire::Key> key_from_hex(const std::string& text);

// What the target daemon tells the incoming shepherd (osmo __job-migrate-in 3 4).
struct IncomingOrder {
  nlohmann::json spec;  // the job's JobSpec, node and state_dir set for this node
  wire::Key session_key{};
  wire::SealSuite suite = wire::SealSuite::kChaCha20Poly1305;
  int epoch = 1;          // the migration's number: the job's migration count after it
  std::int64_t started_unix_ms = 0;  // when the job first started (osmo ps)
  std::string method;
  std::string source;     // node the job comes from
  std::string home_addr;  // the job's home daemon (for the attach)
  std::string node_name;  // this node
  wire::Key cluster_key{};  // for the authenticated dial to home (peer handshake)
  bool peer_encryption = true;  // the target daemon's setting, for that dial
  // The target daemon that started us: if it dies before the job runs here, the migration is
  // abandoned (the job resumes at the source), as if the node had gone.
  pid_t daemon_pid = 0;
  std::uint64_t daemon_start = 0;
};
nlohmann::json to_json(const IncomingOrder& o);
Result<IncomingOrder> incoming_order_from_json(const nlohmann::json& j);

// One sealed session over the migration stream, as seen from one side.
class SealedChannel {
 public:
  SealedChannel(int fd, const wire::Key& key, wire::SealSuite suite, bool initiator);
  Status send(const nlohmann::json& m);
  // The next message; a byte-stream chunk here is a protocol error.
  Result<nlohmann::json> receive();
  int fd() const { return fd_; }
  wire::ChunkSealer& sealer() { return sealer_; }
  wire::ChunkOpener& opener() { return opener_; }

 private:
  int fd_;
  wire::ChunkSealer sealer_;
  wire::ChunkOpener opener_;
};

// One JSON object per SOCK_SEQPACKET record, with at most one fd (SCM_RIGHTS): the requests and
// answers on a shepherd's control endpoint (run::control_endpoint_path). Records of any size (a
// job spec carries the whole environment).
Status send_packet(int sock, const nlohmann::json& j, int fd = -1);
struct Packet {
  nlohmann::json json;
  UniqueFd fd;  // invalid when none came
};
// Waits at most timeout_ms; an error on EOF, timeout or a record that is not a JSON object.
Result<Packet> recv_packet(int sock, int timeout_ms, const std::string& from);

// Reads one JSON object line within timeout_ms (SO_RCVTIMEO); `from` names the peer in errors.
Result<nlohmann::json> read_json_line(int fd, std::string& pending, int timeout_ms, const std::string& from);

}  // namespace osmo::migrate
