// SPDX-License-Identifier: GPL-2.0-or-later
// Encoding and strict decoding of the handoff frames' payloads (see handoff_frames.hpp).
#include "run/handoff_frames.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace osmo::run {

namespace {

using nlohmann::json;

Result<json> parse_object(std::string_view payload, const char* frame) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error("relay stream: {} frame is not a JSON object", frame);
  return j;
}

Status get_u64(const json& j, const char* key, const char* frame, std::uint64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned())
    return make_error("relay stream: {} frame lacks an unsigned \"{}\"", frame, key);
  *out = it->get<std::uint64_t>();
  return ok_status();
}

Status get_u32(const json& j, const char* key, const char* frame, std::uint32_t* out) {
  std::uint64_t v = 0;
  OSMO_TRY(get_u64(j, key, frame, &v));
  if (v > UINT32_MAX) return make_error("relay stream: {} frame: \"{}\" {} out of range", frame, key, v);
  *out = static_cast<std::uint32_t>(v);
  return ok_status();
}

Status get_string(const json& j, const char* key, const char* frame, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string())
    return make_error("relay stream: {} frame lacks a string \"{}\"", frame, key);
  *out = it->get<std::string>();
  return ok_status();
}

void put_offsets(json& j, const StreamOffsets& o) {
  j["stdout"] = o.stdout_bytes;
  j["stderr"] = o.stderr_bytes;
  j["stdin"] = o.stdin_bytes;
  j["signals"] = o.signals;
}

Status get_offsets(const json& j, const char* frame, StreamOffsets* o) {
  OSMO_TRY(get_u64(j, "stdout", frame, &o->stdout_bytes));
  OSMO_TRY(get_u64(j, "stderr", frame, &o->stderr_bytes));
  OSMO_TRY(get_u64(j, "stdin", frame, &o->stdin_bytes));
  return get_u64(j, "signals", frame, &o->signals);
}

}  // namespace

std::string encode(const HandoffMsg& m) {
  json j = json::object();
  put_offsets(j, m.at);
  return j.dump();
}

std::string encode(const HandoffAckMsg& m) {
  return json{{"stdin", m.stdin_bytes}, {"signals", m.signals}, {"epoch", m.epoch}}.dump();
}

std::string encode(const AttachMsg& m) {
  json j{{"id", m.id}, {"epoch", m.epoch}, {"node", m.node}};
  put_offsets(j, m.at);
  return j.dump();
}

std::string encode(const AttachedMsg& m) {
  return json{{"stdin", m.stdin_bytes}, {"signals", m.signals}}.dump();
}

Result<HandoffMsg> decode_handoff(std::string_view payload) {
  OSMO_ASSIGN_OR_RETURN(json j, parse_object(payload, "handoff"));
  HandoffMsg m;
  OSMO_TRY(get_offsets(j, "handoff", &m.at));
  return m;
}

Result<HandoffAckMsg> decode_handoff_ack(std::string_view payload) {
  OSMO_ASSIGN_OR_RETURN(json j, parse_object(payload, "handoff-ack"));
  HandoffAckMsg m;
  OSMO_TRY(get_u64(j, "stdin", "handoff-ack", &m.stdin_bytes));
  OSMO_TRY(get_u64(j, "signals", "handoff-ack", &m.signals));
  OSMO_TRY(get_u32(j, "epoch", "handoff-ack", &m.epoch));
  return m;
}

Result<AttachMsg> decode_attach(std::string_view payload) {
  OSMO_ASSIGN_OR_RETURN(json j, parse_object(payload, "attach"));
  AttachMsg m;
  OSMO_TRY(get_string(j, "id", "attach", &m.id));
  OSMO_TRY(get_u32(j, "epoch", "attach", &m.epoch));
  OSMO_TRY(get_string(j, "node", "attach", &m.node));
  OSMO_TRY(get_offsets(j, "attach", &m.at));
  return m;
}

Result<AttachedMsg> decode_attached(std::string_view payload) {
  OSMO_ASSIGN_OR_RETURN(json j, parse_object(payload, "attached"));
  AttachedMsg m;
  OSMO_TRY(get_u64(j, "stdin", "attached", &m.stdin_bytes));
  OSMO_TRY(get_u64(j, "signals", "attached", &m.signals));
  return m;
}

std::string encode_message(std::string_view message) { return json{{"message", message}}.dump(); }

std::string decode_message(std::string_view payload) {
  json j = json::parse(payload, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  return std::string(payload);
}

std::string describe(const StreamOffsets& o) {
  return fmt::format("stdout {}, stderr {}, stdin {}, signals {}", o.stdout_bytes, o.stderr_bytes,
                     o.stdin_bytes, o.signals);
}

}  // namespace osmo::run
