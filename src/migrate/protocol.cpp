// SPDX-License-Identifier: GPL-2.0-or-later
// Migration messages and orders (see protocol.hpp).
#include "migrate/protocol.hpp"

#include <sys/socket.h>

#include <cstring>

#include <fmt/format.h>

#include "base/fd_io.hpp"
#include "daemon/control_client.hpp"
#include "platform/linux/fd_passing.hpp"
#include "platform/linux/socket.hpp"

namespace osmo::migrate {

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

Result<std::vector<std::uint8_t>> from_hex(const std::string& text, std::size_t want_bytes, const char* what) {
  if (text.size() != 2 * want_bytes) return make_error("{}: expected {} hex digits, got {}", what, 2 * want_bytes, text.size());
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out(want_bytes);
  for (std::size_t i = 0; i < want_bytes; ++i) {
    const int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error("{}: not lowercase hex", what);
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

Result<wire::SessionId> session_from_hex(const std::string& text) {
  OSMO_ASSIGN_OR_RETURN(auto v, from_hex(text, wire::SessionId{}.size(), "session id"));
  wire::SessionId id;
  std::memcpy(id.data(), v.data(), id.size());
  return id;
}

Result<wire::Key> key_from_hex(const std::string& text) {
  OSMO_ASSIGN_OR_RETURN(auto v, from_hex(text, wire::kKeyBytes, "key"));
  wire::Key k;
  std::memcpy(k.data(), v.data(), k.size());
  return k;
}

nlohmann::json to_json(const IncomingOrder& o) {
  return {{"spec", o.spec},         {"session_key", to_hex(o.session_key)},
          {"suite", static_cast<int>(o.suite)},
          {"epoch", o.epoch},       {"method", o.method},
          {"source", o.source},     {"home_addr", o.home_addr},
          {"node_name", o.node_name}, {"cluster_key", to_hex(o.cluster_key)},
          {"daemon_pid", o.daemon_pid}, {"daemon_start", o.daemon_start},
          {"peer_encryption", o.peer_encryption},
          {"started_unix_ms", o.started_unix_ms}};
}

Result<IncomingOrder> incoming_order_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("spec")) return make_error("incoming order without a spec");
  IncomingOrder o;
  o.spec = j["spec"];
  OSMO_ASSIGN_OR_RETURN(o.session_key, key_from_hex(j.value("session_key", "")));
  OSMO_ASSIGN_OR_RETURN(o.cluster_key, key_from_hex(j.value("cluster_key", "")));
  o.suite = static_cast<wire::SealSuite>(j.value("suite", 0));
  o.epoch = j.value("epoch", 1);
  o.method = j.value("method", "auto");
  o.source = j.value("source", "");
  o.home_addr = j.value("home_addr", "");
  o.node_name = j.value("node_name", "");
  o.daemon_pid = j.value("daemon_pid", 0);
  o.peer_encryption = j.value("peer_encryption", true);
  o.started_unix_ms = j.value("started_unix_ms", std::int64_t{0});
  o.daemon_start = j.value("daemon_start", std::uint64_t{0});
  return o;
}

namespace {
wire::Direction out_dir(bool initiator) {
  return initiator ? wire::Direction::kInitiatorToResponder : wire::Direction::kResponderToInitiator;
}
wire::Direction in_dir(bool initiator) {
  return initiator ? wire::Direction::kResponderToInitiator : wire::Direction::kInitiatorToResponder;
}
}  // namespace

SealedChannel::SealedChannel(int fd, const wire::Key& key, wire::SealSuite suite, bool initiator)
    : fd_(fd), sealer_(key, suite, out_dir(initiator)), opener_(key, suite, in_dir(initiator)) {}

Status SealedChannel::send(const nlohmann::json& m) { return sealer_.write_message(fd_, m.dump()); }

Result<nlohmann::json> SealedChannel::receive() {
  wire::Chunk c;
  OSMO_TRY(opener_.read(fd_, &c));
  if (c.type != wire::ChunkType::kMessage)
    return make_error("protocol error: stream bytes where a message was expected (chunk {})", opener_.chunks() - 1);
  auto j = nlohmann::json::parse(c.payload.begin(), c.payload.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("t") || !j["t"].is_string())
    return make_error("protocol error: malformed message (chunk {})", opener_.chunks() - 1);
  return j;
}

Status send_packet(int sock, const nlohmann::json& j, int fd) {
  const std::string text = j.dump();
  if (platform::send_with_fds(sock, text.data(), text.size(), std::span<const int>(&fd, fd >= 0 ? 1 : 0)) < 0)
    return errno_error("cannot send a {}-byte message", text.size());
  return ok_status();
}

Result<Packet> recv_packet(int sock, int timeout_ms, const std::string& from) {
  const int pr = wait_readable(sock, timeout_ms);
  if (pr < 0) return errno_error("waiting for {}", from);
  if (pr == 0) return make_error("{} did not answer within {} s", from, timeout_ms / 1000);
  // The record's size first, then the record, whole.
  const ssize_t len = platform::next_record_size(sock);
  if (len < 0) return errno_error("reading from {}", from);
  if (len == 0) return make_error("{} closed the connection without an answer", from);
  if (len > (16 << 20)) return make_error("{} sent a {}-byte message (at most 16 MiB)", from, len);
  std::string buf(static_cast<std::size_t>(len), '\0');
  platform::ReceivedFds fds;
  const ssize_t n = platform::recv_with_fds(sock, buf.data(), buf.size(), &fds);
  if (n < 0) return errno_error("reading from {}", from);
  Packet out;
  if (fds.count > 0) out.fd = fds.take(0);  // one fd per message: extra ones are not ours to keep
  out.json = nlohmann::json::parse(buf.begin(), buf.begin() + n, nullptr, false);
  if (out.json.is_discarded() || !out.json.is_object()) return make_error("{} sent a malformed message", from);
  return out;
}

Result<nlohmann::json> read_json_line(int fd, std::string& pending, int timeout_ms, const std::string& from) {
  platform::set_receive_timeout(fd, timeout_ms);
  OSMO_ASSIGN_OR_RETURN(std::string line, daemon::recv_line(fd, pending, nullptr, 1u << 20));
  if (line.empty()) return make_error("{} closed the connection without an answer", from);
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error("{} sent a malformed answer", from);
  return j;
}

}  // namespace osmo::migrate
