// SPDX-License-Identifier: GPL-2.0-or-later
#include "gossip/messages.hpp"

#include <algorithm>
#include <cmath>

namespace osmo::gossip::msg {

const char* to_string(Type t) {
  switch (t) {
    case Type::kPing:
      return "ping";
    case Type::kPingReq:
      return "ping-req";
    case Type::kAck:
      return "ack";
    case Type::kSync:
      return "sync";
    case Type::kLoad:
      return "load";
    case Type::kGossip:
      return "gossip";
  }
  return "?";
}

wire::DatagramSpec datagram_spec() {
  return wire::DatagramSpec{kMagic, kVersion, kMaxNameBytes, env::kMaxDatagramBytes};
}

wire::Key gossip_key(const wire::Key& cluster_key) {
  return wire::derive_subkey(cluster_key, "gossip-datagram-v2");
}

Builder::Builder(Type type, std::string_view sender, std::uint64_t sender_incarnation,
                 const env::Endpoint& sender_addr)
    : type_(type), sender_(sender.substr(0, kMaxNameBytes)), body_(kMaxBodyBytes), fields_(body_) {
  fields_.str(tag::kSender, sender.substr(0, kMaxNameBytes));
  fields_.u64(tag::kSenderIncarnation, sender_incarnation);
  if (!sender_addr.host.empty()) {
    fields_.str(tag::kSenderHost, sender_addr.host);
    fields_.u64(tag::kSenderPort, sender_addr.port);
  }
}

void Builder::seq(std::uint64_t v) {
  fields_.u64(tag::kSeq, v);
}
void Builder::target(std::string_view name) {
  fields_.str(tag::kTarget, name);
}
void Builder::target_addr(const env::Endpoint& addr) {
  fields_.str(tag::kTargetHost, addr.host);
  fields_.u64(tag::kTargetPort, addr.port);
}
void Builder::flags(std::uint64_t v) {
  fields_.u64(tag::kFlags, v);
}

wire::Writer Builder::encode(const MemberRecord& r) {
  wire::Writer w;
  wire::FieldWriter f(w);
  f.str(member_tag::kName, r.name);
  f.str(member_tag::kHost, r.addr.host);
  f.u64(member_tag::kPort, r.addr.port);
  f.u64(member_tag::kIncarnation, r.incarnation);
  f.u64(member_tag::kState, static_cast<std::uint64_t>(r.state));
  return w;
}

namespace {

// Largest real number a load field may carry (in units): far beyond any machine, small enough
// that value * 1000 is exact in a double and fits a u64.
constexpr double kMaxLoadNumber = 1e9;

std::uint64_t to_milli(double v) {
  if (!std::isfinite(v) || v <= 0) return 0;
  return static_cast<std::uint64_t>(std::llround(std::min(v, kMaxLoadNumber) * 1000.0));
}

}  // namespace

wire::Writer Builder::encode(const LoadRecord& r) {
  wire::Writer w;
  wire::FieldWriter f(w);
  f.str(load_tag::kName, r.name);
  f.u64(load_tag::kAgeMs, static_cast<std::uint64_t>(r.age_ms < 0 ? 0 : r.age_ms));
  f.u64(load_tag::kLoad, to_milli(r.load.load));
  f.u64(load_tag::kRunnable, to_milli(r.load.runnable));
  f.u64(load_tag::kCpus, to_milli(r.load.cpus));
  f.u64(load_tag::kSpeed, to_milli(r.load.speed));
  f.u64(load_tag::kMemFreeMb, r.load.mem_free_mb);
  f.u64(load_tag::kMemTotalMb, r.load.mem_total_mb);
  f.u64(load_tag::kJobs, r.load.jobs);
  if (r.load.flags != 0) f.u64(load_tag::kFlags, r.load.flags);
  return w;
}

bool Builder::add_record(wire::FieldTag t, const wire::Writer& rec) {
  if (records_ >= kMaxRecordsPerMessage) return false;
  if (wire::FieldWriter::field_size(rec.size()) > body_.remaining()) return false;
  fields_.record(t, rec);
  ++records_;
  return true;
}

std::vector<std::uint8_t> Builder::seal(const wire::Key& key, env::TimeMs sent_ms,
                                        wire::DatagramMode mode, const wire::DatagramNonce* nonce) const {
  wire::DatagramHeader h;
  h.type = static_cast<std::uint8_t>(type_);
  h.mode = mode;
  h.sent_ms = static_cast<std::uint64_t>(std::max<env::TimeMs>(sent_ms, 0));
  h.sender = sender_;
  h.nonce = nonce != nullptr ? *nonce : wire::random_datagram_nonce();
  return wire::seal_datagram(key, datagram_spec(), h, body_.data());
}

namespace {

// A decoding failure: the first reason found, as static text.
struct Fail {
  const char* why = nullptr;
  bool set(const char* w) {
    if (why == nullptr) why = w;
    return false;
  }
};

bool get_name(const wire::Field& f, std::string* out, Fail* fail) {
  if (!f.as_str(kMaxNameBytes, out) || out->empty()) return fail->set("bad node name");
  return true;
}

bool get_port(const wire::Field& f, std::uint16_t* out, Fail* fail) {
  std::uint64_t v = 0;
  if (!f.as_u64(&v) || v == 0 || v > 65535) return fail->set("bad port");
  *out = static_cast<std::uint16_t>(v);
  return true;
}

bool get_milli(const wire::Field& f, double* out, Fail* fail) {
  std::uint64_t v = 0;
  if (!f.as_u64(&v) || static_cast<double>(v) > kMaxLoadNumber * 1000.0)
    return fail->set("bad load number");
  *out = static_cast<double>(v) / 1000.0;
  return true;
}

bool get_u64(const wire::Field& f, std::uint64_t* out, Fail* fail) {
  if (!f.as_u64(out)) return fail->set("bad integer field");
  return true;
}

bool decode_member(std::span<const std::uint8_t> rec, MemberRecord* m, Fail* fail) {
  wire::FieldReader r(rec);
  wire::Field f;
  bool has_name = false, has_host = false, has_port = false, has_inc = false, has_state = false;
  while (r.next(&f)) {
    switch (f.tag) {
      case member_tag::kName:
        if (!get_name(f, &m->name, fail)) return false;
        has_name = true;
        break;
      case member_tag::kHost:
        if (!f.as_str(kMaxHostBytes, &m->addr.host) || m->addr.host.empty())
          return fail->set("bad host");
        has_host = true;
        break;
      case member_tag::kPort:
        if (!get_port(f, &m->addr.port, fail)) return false;
        has_port = true;
        break;
      case member_tag::kIncarnation:
        if (!get_u64(f, &m->incarnation, fail)) return false;
        has_inc = true;
        break;
      case member_tag::kState: {
        std::uint64_t v = 0;
        if (!get_u64(f, &v, fail)) return false;
        if (v > static_cast<std::uint64_t>(MemberState::kLeft))
          return fail->set("bad member state");
        m->state = static_cast<MemberState>(v);
        has_state = true;
        break;
      }
      default:
        break;  // a newer writer's field
    }
  }
  if (!r.ok()) return fail->set(r.error());
  if (!(has_name && has_host && has_port && has_inc && has_state))
    return fail->set("member record lacks a required field");
  return true;
}

bool decode_load(std::span<const std::uint8_t> rec, LoadRecord* l, Fail* fail) {
  wire::FieldReader r(rec);
  wire::Field f;
  bool has_name = false, has_age = false;
  std::uint64_t v = 0;
  while (r.next(&f)) {
    switch (f.tag) {
      case load_tag::kName:
        if (!get_name(f, &l->name, fail)) return false;
        has_name = true;
        break;
      case load_tag::kAgeMs:
        if (!get_u64(f, &v, fail)) return false;
        if (v > static_cast<std::uint64_t>(kMaxLoadAgeMs)) return fail->set("load age too large");
        l->age_ms = static_cast<env::TimeMs>(v);
        has_age = true;
        break;
      case load_tag::kLoad:
        if (!get_milli(f, &l->load.load, fail)) return false;
        break;
      case load_tag::kRunnable:
        if (!get_milli(f, &l->load.runnable, fail)) return false;
        break;
      case load_tag::kCpus:
        if (!get_milli(f, &l->load.cpus, fail)) return false;
        break;
      case load_tag::kSpeed:
        if (!get_milli(f, &l->load.speed, fail)) return false;
        break;
      case load_tag::kMemFreeMb:
        if (!get_u64(f, &l->load.mem_free_mb, fail)) return false;
        break;
      case load_tag::kMemTotalMb:
        if (!get_u64(f, &l->load.mem_total_mb, fail)) return false;
        break;
      case load_tag::kJobs:
        if (!get_u64(f, &v, fail)) return false;
        if (v > UINT32_MAX) return fail->set("job count too large");
        l->load.jobs = static_cast<std::uint32_t>(v);
        break;
      case load_tag::kFlags:
        if (!get_u64(f, &v, fail)) return false;
        l->load.flags = static_cast<std::uint32_t>(v);  // bits we do not know are kept, unused
        break;
      default:
        break;
    }
  }
  if (!r.ok()) return fail->set(r.error());
  if (!(has_name && has_age)) return fail->set("load record lacks a required field");
  return true;
}

bool decode_body(std::span<const std::uint8_t> body, Message* m, Fail* fail) {
  wire::FieldReader r(body);
  wire::Field f;
  bool has_sender = false, has_seq = false, has_target = false, has_thost = false,
       has_tport = false, has_shost = false, has_sport = false;
  env::Endpoint sender_addr;
  std::size_t records = 0;
  while (r.next(&f)) {
    switch (f.tag) {
      case tag::kSender:
        if (!get_name(f, &m->sender, fail)) return false;
        has_sender = true;
        break;
      case tag::kSenderIncarnation:
        if (!get_u64(f, &m->sender_incarnation, fail)) return false;
        break;
      case tag::kSeq:
        if (!get_u64(f, &m->seq, fail)) return false;
        has_seq = true;
        break;
      case tag::kTarget:
        if (!get_name(f, &m->target, fail)) return false;
        has_target = true;
        break;
      case tag::kTargetHost:
        if (!f.as_str(kMaxHostBytes, &m->target_addr.host) || m->target_addr.host.empty())
          return fail->set("bad target host");
        has_thost = true;
        break;
      case tag::kTargetPort:
        if (!get_port(f, &m->target_addr.port, fail)) return false;
        has_tport = true;
        break;
      case tag::kSenderHost:
        if (!f.as_str(kMaxHostBytes, &sender_addr.host) || sender_addr.host.empty())
          return fail->set("bad sender host");
        has_shost = true;
        break;
      case tag::kSenderPort:
        if (!get_port(f, &sender_addr.port, fail)) return false;
        has_sport = true;
        break;
      case tag::kFlags:
        if (!get_u64(f, &m->flags, fail)) return false;
        break;
      case tag::kMember:
      case tag::kUpdate: {
        if (++records > kMaxRecordsPerMessage) return fail->set("too many records");
        MemberRecord rec;
        if (!decode_member(f.value, &rec, fail)) return false;
        (f.tag == tag::kMember ? m->members : m->updates).push_back(std::move(rec));
        break;
      }
      case tag::kLoadEntry: {
        if (++records > kMaxRecordsPerMessage) return fail->set("too many records");
        LoadRecord rec;
        if (!decode_load(f.value, &rec, fail)) return false;
        m->loads.push_back(std::move(rec));
        break;
      }
      default:
        break;  // a newer writer's field: skipped
    }
  }
  if (!r.ok()) return fail->set(r.error());
  if (!has_sender) return fail->set("message lacks its sender");
  if (has_shost != has_sport) return fail->set("sender address is incomplete");
  if (has_shost) m->sender_addr = sender_addr;
  switch (m->type) {
    case Type::kPing:
      if (!has_seq || !has_target) return fail->set("ping lacks seq or target");
      break;
    case Type::kPingReq:
      if (!has_seq || !has_target || !has_thost || !has_tport)
        return fail->set("ping-req lacks seq or target");
      break;
    case Type::kAck:
      if (!has_seq) return fail->set("ack lacks seq");
      break;
    case Type::kSync:
    case Type::kLoad:
    case Type::kGossip:
      break;
  }
  return true;
}

}  // namespace

Decoded decode(const wire::Key& key, std::span<const std::uint8_t> datagram, wire::DatagramMode mode) {
  Decoded d;
  wire::OpenedDatagram frame;
  switch (wire::open_datagram(key, datagram_spec(), mode, datagram, &frame)) {
    case wire::DatagramStatus::kOk:
      break;
    case wire::DatagramStatus::kMalformed:
      d.status = DecodeStatus::kMalformed;
      d.why = "bad envelope size or field";
      return d;
    case wire::DatagramStatus::kBadMagic:
      d.status = DecodeStatus::kBadVersion;
      d.why = "bad magic";
      return d;
    case wire::DatagramStatus::kBadVersion:
      d.status = DecodeStatus::kBadVersion;
      d.why = "unsupported protocol version";
      return d;
    case wire::DatagramStatus::kBadMac:
      d.status = DecodeStatus::kBadMac;
      d.why = "bad MAC";
      return d;
    case wire::DatagramStatus::kModeMismatch:
      d.status = DecodeStatus::kModeMismatch;
      d.why = mode == wire::DatagramMode::kSealed ? "sent in clear, we encrypt" : "encrypted, we run in clear";
      return d;
  }
  if (frame.header.type == 0 || frame.header.type > kMaxKnownType) {
    d.status = DecodeStatus::kUnknownType;
    d.why = "unknown message type";
    return d;
  }
  d.msg.type = static_cast<Type>(frame.header.type);
  Fail fail;
  if (!decode_body(frame.body, &d.msg, &fail)) {
    d.status = DecodeStatus::kMalformed;
    d.why = fail.why != nullptr ? fail.why : "malformed body";
    d.msg = Message{};
    return d;
  }
  if (d.msg.sender != frame.header.sender) {
    // The envelope's sender is what the send time and nonce are bound to: a body that claims
    // another name is not that sender's word.
    d.status = DecodeStatus::kBadMac;
    d.why = "sender in the envelope differs from the message's";
    d.msg = Message{};
    return d;
  }
  d.sent_ms = static_cast<env::TimeMs>(std::min<std::uint64_t>(frame.header.sent_ms, INT64_MAX));
  d.nonce = frame.header.nonce;
  d.status = DecodeStatus::kOk;
  return d;
}

}  // namespace osmo::gossip::msg
