// SPDX-License-Identifier: GPL-2.0-or-later
// The gossip datagram protocol: message types, field tags, and the encoder/decoder. A datagram
// is a sealed datagram (wire/sealed_datagram.hpp: magic "OSMG", version, type, nonce, then the
// sender's name, send time and body under XChaCha20-Poly1305) whose body is tagged fields
// (wire/fields.hpp). All message types share one tag space, so a field means the same thing in
// every message. Both the type numbers and the tag numbers ARE the protocol: append only, never
// renumber, never reuse. docs/protocol.md describes each message.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "env/endpoint.hpp"
#include "gossip/defaults.hpp"
#include "gossip/node.hpp"
#include "wire/bytes.hpp"
#include "wire/fields.hpp"
#include "wire/sealed_datagram.hpp"

namespace osmo::gossip::msg {

// "OSMG" in the first four bytes of every gossip datagram.
inline constexpr std::uint32_t kMagic = 0x474d534f;
// Version 2: the sealed envelope (encrypted, bound to sender and send time). Version 1 (a
// cleartext body under a BLAKE2b MAC) is no longer accepted: such datagrams are counted as
// dropped_bad_version. Compatible additions are new tags and new types (readers skip and ignore
// them); the version changes only if an existing meaning has to change.
inline constexpr std::uint8_t kVersion = 2;

// Message types. The numbers are the protocol: append only, never renumber or reuse.
enum class Type : std::uint8_t {
  kPing = 1,     // direct probe: "target, answer with an ack carrying seq"
  kPingReq = 2,  // "probe target for me and relay its ack"
  kAck = 3,      // answer to a ping (direct, or relayed by a ping-req helper)
  kSync = 4,     // anti-entropy / join: a slice of the sender's member table
  kLoad = 5,     // MOSIX-style load gossip: sender's load + freshest entries it heard
  kGossip = 6,   // only piggybacked updates (used to announce a leave)
};
inline constexpr std::uint8_t kMaxKnownType = 6;
const char* to_string(Type t);

// Field tags of message bodies. Append only; never renumber or reuse.
namespace tag {
inline constexpr wire::FieldTag kSender = 1;             // str: sender's node name (all types)
inline constexpr wire::FieldTag kSenderIncarnation = 2;  // u64: sender's current incarnation
inline constexpr wire::FieldTag kSeq = 3;                // u64: probe sequence number
inline constexpr wire::FieldTag kTarget = 4;             // str: name of the probed node
inline constexpr wire::FieldTag kTargetHost = 5;         // str: ping-req: where to probe
inline constexpr wire::FieldTag kTargetPort = 6;         // u64: ping-req: where to probe
inline constexpr wire::FieldTag kFlags = 7;              // u64: kSync flags
inline constexpr wire::FieldTag kMember = 8;             // record MemberRecord (sync), repeated
inline constexpr wire::FieldTag kLoadEntry = 9;          // record LoadRecord (load), repeated
inline constexpr wire::FieldTag kUpdate = 10;      // record MemberRecord (piggyback), repeated
inline constexpr wire::FieldTag kSenderHost = 11;  // str: sender's advertised address
inline constexpr wire::FieldTag kSenderPort = 12;  // u64: sender's advertised port
}  // namespace tag

// Tags inside a member record (membership claim: "name at addr is <state> at incarnation").
namespace member_tag {
inline constexpr wire::FieldTag kName = 1;         // str
inline constexpr wire::FieldTag kHost = 2;         // str
inline constexpr wire::FieldTag kPort = 3;         // u64
inline constexpr wire::FieldTag kIncarnation = 4;  // u64
inline constexpr wire::FieldTag kState = 5;        // u64: MemberState (0 alive .. 3 left)
}  // namespace member_tag

// Tags inside a load record.
namespace load_tag {
inline constexpr wire::FieldTag kName = 1;   // str
inline constexpr wire::FieldTag kAgeMs = 2;  // u64: age of the entry at the sender, ms
// The four real numbers travel as u64 thousandths (fixed point): 2-3 bytes instead of 8 for
// typical values, so twice as many entries fit a datagram; 0.001 is finer than any load
// decision needs. Negative or non-finite values are sent as 0.
inline constexpr wire::FieldTag kLoad = 3;        // u64: load * 1000
inline constexpr wire::FieldTag kRunnable = 4;    // u64: runnable * 1000
inline constexpr wire::FieldTag kCpus = 5;        // u64: cpus * 1000
inline constexpr wire::FieldTag kSpeed = 6;       // u64: speed * 1000
inline constexpr wire::FieldTag kMemFreeMb = 7;   // u64
inline constexpr wire::FieldTag kMemTotalMb = 8;  // u64
inline constexpr wire::FieldTag kJobs = 9;        // u64
inline constexpr wire::FieldTag kFlags = 10;      // u64: LoadInfo::flags (sent when not 0)
}  // namespace load_tag

// kSync flags.
inline constexpr std::uint64_t kSyncReplyWanted = 1;  // answer with your own slice
inline constexpr std::uint64_t kSyncJoin = 2;         // the sender is joining: answer in full

struct MemberRecord {
  std::string name;
  env::Endpoint addr;
  std::uint64_t incarnation = 0;
  MemberState state = MemberState::kAlive;
};

struct LoadRecord {
  std::string name;
  env::TimeMs age_ms = 0;
  LoadInfo load;
};

// A decoded message. Which fields are meaningful depends on `type`.
struct Message {
  Type type = Type::kPing;
  std::string sender;
  std::uint64_t sender_incarnation = 0;
  std::optional<env::Endpoint> sender_addr;  // absent from a leaving node
  std::uint64_t seq = 0;
  std::string target;
  env::Endpoint target_addr;
  std::uint64_t flags = 0;
  std::vector<MemberRecord> members;
  std::vector<LoadRecord> loads;
  std::vector<MemberRecord> updates;
};

// Builds one datagram, never larger than env::kMaxDatagramBytes: the fixed fields first, then
// records for as long as they fit (add_* returns false for one that does not).
class Builder {
 public:
  // `sender_addr` with an empty host is left out of the message.
  Builder(Type type, std::string_view sender, std::uint64_t sender_incarnation,
          const env::Endpoint& sender_addr = {});
  Builder(const Builder&) = delete;  // fields_ refers to body_
  Builder& operator=(const Builder&) = delete;
  void seq(std::uint64_t v);
  void target(std::string_view name);
  void target_addr(const env::Endpoint& addr);
  void flags(std::uint64_t v);
  bool add_member(const MemberRecord& r) { return add_record(tag::kMember, encode(r)); }
  bool add_load(const LoadRecord& r) { return add_record(tag::kLoadEntry, encode(r)); }
  bool add_update(const MemberRecord& r) { return add_record(tag::kUpdate, encode(r)); }
  std::size_t records() const { return records_; }
  std::size_t body_bytes() const { return body_.size(); }
  Type type() const { return type_; }

  // The datagram: body sealed under `key` (the gossip key, gossip_key()) with the sender's name,
  // the send time (wall clock, ms) and a fresh nonce in the envelope; encrypted unless `mode` is
  // kClear.
  // (sent_ms 0 suits codec tests; a node always passes its wall clock.) Without `nonce`, a fresh
  // one comes from libsodium's CSPRNG.
  std::vector<std::uint8_t> seal(const wire::Key& key, env::TimeMs sent_ms = 0,
                                 wire::DatagramMode mode = wire::DatagramMode::kSealed,
                                 const wire::DatagramNonce* nonce = nullptr) const;

  static wire::Writer encode(const MemberRecord& r);
  static wire::Writer encode(const LoadRecord& r);

 private:
  bool add_record(wire::FieldTag t, const wire::Writer& rec);

  Type type_;
  std::string sender_;  // also in the envelope, which binds send time and nonce to it
  wire::Writer body_;
  wire::FieldWriter fields_;
  std::size_t records_ = 0;
};

// Frame status plus body decoding, as one verdict for the receive path.
// kUnknownType: authentic and well-framed, but a type this version does not know (a newer
// node's addition): ignored, counted as foreign, never as an error.
// kModeMismatch: authentic, but encrypted while we run in clear or the other way round.
enum class DecodeStatus : std::uint8_t { kOk, kBadMac, kBadVersion, kMalformed, kUnknownType, kModeMismatch };

struct Decoded {
  DecodeStatus status = DecodeStatus::kMalformed;
  const char* why = "";  // static text for logs when status != kOk
  Message msg;
  env::TimeMs sent_ms = 0;        // from the envelope (sender's wall clock), when status is kOk
  wire::DatagramNonce nonce{};    // from the envelope, when status is kOk
};

// Authenticates, decrypts and decodes one datagram. A sender name in the envelope that differs
// from the message's own sender field is a forgery (kBadMac). Unknown tags are skipped; an unknown
// type, a missing required field, a value of the wrong shape or outside its limit makes the
// datagram malformed. Freshness (send time, nonce) is the caller's check (replay_guard.hpp).
Decoded decode(const wire::Key& key, std::span<const std::uint8_t> datagram,
               wire::DatagramMode mode = wire::DatagramMode::kSealed);

// The envelope spec of gossip datagrams (for wire::seal_datagram/open_datagram).
wire::DatagramSpec datagram_spec();

// The gossip key: the cluster key narrowed to gossip datagrams (wire::derive_subkey).
wire::Key gossip_key(const wire::Key& cluster_key);

}  // namespace osmo::gossip::msg
