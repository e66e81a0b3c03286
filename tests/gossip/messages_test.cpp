// SPDX-License-Identifier: GPL-2.0-or-later
// The gossip datagram codec: every type round-trips, unknown fields and types are tolerated as
// the append-only rules promise, limits are enforced on both sides.
#include "gossip/messages.hpp"

#include <gtest/gtest.h>

#include "cluster_harness.hpp"
#include "wire/fields.hpp"
#include "wire/frame.hpp"

namespace osmo::gossip::msg {
namespace {

wire::Key key() {
  auto v = testing::test_key();
  wire::Key k{};
  std::copy(v.begin(), v.end(), k.begin());
  return k;
}

MemberRecord member(int i, MemberState s = MemberState::kAlive) {
  return {"node-" + std::to_string(i),
          {"10.9.8." + std::to_string(i % 250), 7946},
          static_cast<std::uint64_t>(1000 + i),
          s};
}

TEST(Messages, PingRoundTrips) {
  Builder b(Type::kPing, "alpha", 7, {"10.0.0.1", 7946});
  b.seq(42);
  b.target("beta");
  ASSERT_TRUE(b.add_update(member(1, MemberState::kSuspect)));
  auto d = decode(key(), b.seal(key()));
  ASSERT_EQ(d.status, DecodeStatus::kOk) << d.why;
  EXPECT_EQ(d.msg.type, Type::kPing);
  EXPECT_EQ(d.msg.sender, "alpha");
  EXPECT_EQ(d.msg.sender_incarnation, 7u);
  ASSERT_TRUE(d.msg.sender_addr);
  EXPECT_EQ(d.msg.sender_addr->str(), "10.0.0.1:7946");
  EXPECT_EQ(d.msg.seq, 42u);
  EXPECT_EQ(d.msg.target, "beta");
  ASSERT_EQ(d.msg.updates.size(), 1u);
  EXPECT_EQ(d.msg.updates[0].name, "node-1");
  EXPECT_EQ(d.msg.updates[0].state, MemberState::kSuspect);
  EXPECT_EQ(d.msg.updates[0].incarnation, 1001u);
}

TEST(Messages, PingReqSyncLoadRoundTrip) {
  Builder pr(Type::kPingReq, "a", 1);
  pr.seq(5);
  pr.target("c");
  pr.target_addr({"fe80::1", 9000});
  auto d = decode(key(), pr.seal(key()));
  ASSERT_EQ(d.status, DecodeStatus::kOk) << d.why;
  EXPECT_EQ(d.msg.target_addr.host, "fe80::1");
  EXPECT_EQ(d.msg.target_addr.port, 9000);
  EXPECT_FALSE(d.msg.sender_addr);

  Builder sy(Type::kSync, "a", 1);
  sy.flags(kSyncReplyWanted | kSyncJoin);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(sy.add_member(member(i, MemberState::kDead)));
  d = decode(key(), sy.seal(key()));
  ASSERT_EQ(d.status, DecodeStatus::kOk) << d.why;
  EXPECT_EQ(d.msg.flags, kSyncReplyWanted | kSyncJoin);
  ASSERT_EQ(d.msg.members.size(), 5u);
  EXPECT_EQ(d.msg.members[4].state, MemberState::kDead);

  Builder ld(Type::kLoad, "a", 1);
  LoadRecord lr{"b", 1234, {}};
  lr.load = {0.5, 3.25, 4, 1.5, 100, 200, 7, kLoadFlagDraining | kLoadFlagNoAutoMigration};
  LoadRecord odd{"c", 0, {}};
  odd.load = {std::nan(""), -2, 1e300, 0.0004, 0, 0, 0, 0};  // sent as 0, 0, the cap, 0
  ASSERT_TRUE(ld.add_load(odd));
  ASSERT_TRUE(ld.add_load(lr));
  d = decode(key(), ld.seal(key()));
  ASSERT_EQ(d.status, DecodeStatus::kOk) << d.why;
  ASSERT_EQ(d.msg.loads.size(), 2u);
  const auto& got = d.msg.loads[1];
  EXPECT_EQ(got.name, "b");
  EXPECT_EQ(got.age_ms, 1234);
  EXPECT_EQ(got.load.load, 0.5);
  EXPECT_EQ(got.load.runnable, 3.25);
  EXPECT_EQ(got.load.cpus, 4);
  EXPECT_EQ(got.load.speed, 1.5);
  EXPECT_EQ(got.load.mem_free_mb, 100u);
  EXPECT_EQ(got.load.mem_total_mb, 200u);
  EXPECT_EQ(got.load.jobs, 7u);
  EXPECT_EQ(got.load.flags, kLoadFlagDraining | kLoadFlagNoAutoMigration);
  EXPECT_EQ(d.msg.loads[0].load.flags, 0u);
  const auto& o = d.msg.loads[0].load;
  EXPECT_EQ(o.load, 0);
  EXPECT_EQ(o.runnable, 0);
  EXPECT_EQ(o.cpus, 1e9);
  EXPECT_EQ(o.speed, 0);
}

TEST(Messages, BuilderNeverExceedsTheDatagramLimit) {
  Builder b(Type::kSync, std::string(kMaxNameBytes, 'x'), ~0ULL,
            {std::string(kMaxHostBytes, 'h'), 1});
  int added = 0;
  while (added < 1000 && b.add_member({std::string(kMaxNameBytes, 'n'),
                                       {std::string(kMaxHostBytes, 'h'), 65535},
                                       ~0ULL,
                                       MemberState::kLeft}))
    ++added;
  EXPECT_GT(added, 0);
  auto datagram = b.seal(key());
  EXPECT_LE(datagram.size(), env::kMaxDatagramBytes);
  EXPECT_EQ(decode(key(), datagram).status, DecodeStatus::kOk);

  Builder small(Type::kGossip, "a", 1);
  int n = 0;
  while (small.add_update({"b", {"h", 1}, 1, MemberState::kAlive})) ++n;
  EXPECT_EQ(static_cast<std::size_t>(n), kMaxRecordsPerMessage);  // the count limit binds first
}

// Hand-built bodies to exercise the decoder beyond what Builder produces.
std::vector<std::uint8_t> frame(Type t, const wire::Writer& body, std::uint8_t version = kVersion,
                                const std::string& sender = "a", std::uint8_t raw_type = 0) {
  wire::DatagramSpec spec = datagram_spec();
  spec.version = version;
  wire::DatagramHeader h;
  h.type = raw_type != 0 ? raw_type : static_cast<std::uint8_t>(t);
  h.sender = sender;
  h.sent_ms = 1234;
  h.nonce = wire::random_datagram_nonce();
  return wire::seal_datagram(key(), spec, h, body.data());
}

TEST(Messages, UnknownFieldsAreSkippedUnknownTypesIgnored) {
  wire::Writer w;
  wire::FieldWriter f(w);
  f.str(tag::kSender, "future");
  f.str(250, "a field from protocol version 1.7");
  f.u64(tag::kSeq, 9);
  wire::Writer rec = Builder::encode(member(3));
  f.u64(99, 12345);  // unknown tag between known ones
  f.record(tag::kUpdate, rec);
  auto d = decode(key(), frame(Type::kAck, w, kVersion, "future"));
  ASSERT_EQ(d.status, DecodeStatus::kOk) << d.why;
  EXPECT_EQ(d.msg.seq, 9u);
  EXPECT_EQ(d.msg.updates.size(), 1u);
  EXPECT_EQ(d.sent_ms, 1234);

  // A type added by a later version.
  EXPECT_EQ(decode(key(), frame(Type::kAck, w, kVersion, "future", 200)).status, DecodeStatus::kUnknownType);
}

TEST(Messages, RejectsMissingOrBadFields) {
  auto body = [](auto fill) {
    wire::Writer w;
    wire::FieldWriter f(w);
    fill(f);
    return w;
  };
  // No sender.
  EXPECT_EQ(decode(key(), frame(Type::kGossip, body([](auto& f) { f.u64(tag::kSeq, 1); }))).status,
            DecodeStatus::kMalformed);
  // Ping without target.
  EXPECT_EQ(decode(key(), frame(Type::kPing, body([](auto& f) {
                                  f.str(tag::kSender, "a");
                                  f.u64(tag::kSeq, 1);
                                })))
                .status,
            DecodeStatus::kMalformed);
  // Name over the limit.
  EXPECT_EQ(decode(key(), frame(Type::kGossip, body([](auto& f) {
                                  f.str(tag::kSender, std::string(kMaxNameBytes + 1, 'a'));
                                })))
                .status,
            DecodeStatus::kMalformed);
  // Member state outside the enum.
  EXPECT_EQ(decode(key(), frame(Type::kGossip, body([](auto& f) {
                                  f.str(tag::kSender, "a");
                                  wire::Writer r;
                                  wire::FieldWriter rf(r);
                                  rf.str(member_tag::kName, "b");
                                  rf.str(member_tag::kHost, "h");
                                  rf.u64(member_tag::kPort, 1);
                                  rf.u64(member_tag::kIncarnation, 1);
                                  rf.u64(member_tag::kState, 9);
                                  f.record(tag::kUpdate, r);
                                })))
                .status,
            DecodeStatus::kMalformed);
  // Port 0 and an absurd load number.
  EXPECT_EQ(decode(key(), frame(Type::kPingReq, body([](auto& f) {
                                  f.str(tag::kSender, "a");
                                  f.u64(tag::kSeq, 1);
                                  f.str(tag::kTarget, "b");
                                  f.str(tag::kTargetHost, "h");
                                  f.u64(tag::kTargetPort, 0);
                                })))
                .status,
            DecodeStatus::kMalformed);
  EXPECT_EQ(decode(key(), frame(Type::kLoad, body([](auto& f) {
                                  f.str(tag::kSender, "a");
                                  wire::Writer r;
                                  wire::FieldWriter rf(r);
                                  rf.str(load_tag::kName, "b");
                                  rf.u64(load_tag::kAgeMs, 1);
                                  rf.u64(load_tag::kLoad, 1ULL << 60);
                                  f.record(tag::kLoadEntry, r);
                                })))
                .status,
            DecodeStatus::kMalformed);
  // Too many records (a hand-built body with more than the limit, each tiny).
  EXPECT_EQ(decode(key(), frame(Type::kGossip, body([](auto& f) {
                                  f.str(tag::kSender, "a");
                                  for (std::size_t i = 0; i <= kMaxRecordsPerMessage; ++i)
                                    f.record(tag::kUpdate,
                                             Builder::encode(MemberRecord{
                                                 "b", {"h", 1}, 1, MemberState::kAlive}));
                                })))
                .status,
            DecodeStatus::kMalformed);
}

TEST(Messages, VersionAndMacAreCheckedBeforeTheBody) {
  Builder b(Type::kGossip, "a", 1);
  auto good = b.seal(key());
  wire::Writer body;
  wire::FieldWriter(body).str(tag::kSender, "a");
  EXPECT_EQ(decode(key(), frame(Type::kGossip, body, kVersion + 1)).status,
            DecodeStatus::kBadVersion);
  auto bad_magic = good;
  bad_magic[2] ^= 0xff;
  EXPECT_EQ(decode(key(), bad_magic).status, DecodeStatus::kBadVersion);
  wire::Key other = key();
  other[0] ^= 1;
  EXPECT_EQ(decode(other, good).status, DecodeStatus::kBadMac);
  EXPECT_EQ(decode(key(), std::span(good).first(10)).status, DecodeStatus::kMalformed);
}

// The envelope binds the sender: a body that names another sender than the envelope (a
// datagram "re-sent under another sender name" by a key holder) is refused as forged.
TEST(Messages, SenderInEnvelopeMustMatchTheBody) {
  wire::Writer body;
  wire::FieldWriter(body).str(tag::kSender, "n1");
  EXPECT_EQ(decode(key(), frame(Type::kGossip, body, kVersion, "n1")).status, DecodeStatus::kOk);
  auto d = decode(key(), frame(Type::kGossip, body, kVersion, "n2"));
  EXPECT_EQ(d.status, DecodeStatus::kBadMac) << d.why;
  EXPECT_TRUE(d.msg.sender.empty()) << "nothing of a refused datagram is returned";
}

std::string as_text(const std::vector<std::uint8_t>& d) { return std::string(d.begin(), d.end()); }

// Encryption hides the payload: none of the names, hosts or numbers of a load and membership
// message appear in the bytes on the wire; with encryption off they do, and the datagram is still
// authenticated (any flipped byte is refused) and still carries its sender and time.
TEST(Messages, EncryptionHidesThePayloadClearModeStillAuthenticates) {
  Builder b(Type::kLoad, "node-alpha-7", 3, {"10.99.1.17", 7946});
  ASSERT_TRUE(b.add_load({"node-bravo-9", 10, LoadInfo{1.5, 2, 4, 1, 512, 2048, 3}}));
  ASSERT_TRUE(b.add_update({"node-charlie-3", {"10.99.1.42", 7946}, 12, MemberState::kDead}));
  auto sealed = b.seal(key(), 5'000);
  for (const char* secret : {"node-alpha-7", "node-bravo-9", "node-charlie-3", "10.99.1.17", "10.99.1.42"})
    EXPECT_EQ(as_text(sealed).find(secret), std::string::npos) << secret << " visible on the wire";
  auto d = decode(key(), sealed);
  ASSERT_EQ(d.status, DecodeStatus::kOk) << d.why;
  EXPECT_EQ(d.msg.sender, "node-alpha-7");
  EXPECT_EQ(d.sent_ms, 5'000);

  auto clear = b.seal(key(), 5'000, wire::DatagramMode::kClear);
  EXPECT_NE(as_text(clear).find("node-charlie-3"), std::string::npos) << "clear mode sends the body in clear";
  auto c = decode(key(), clear, wire::DatagramMode::kClear);
  ASSERT_EQ(c.status, DecodeStatus::kOk) << c.why;
  EXPECT_EQ(c.msg.updates.at(0).name, "node-charlie-3");
  for (std::size_t i = 0; i < clear.size(); ++i) {
    auto bad = clear;
    bad[i] ^= 0x20;
    auto v = decode(key(), bad, wire::DatagramMode::kClear).status;
    // Bytes 0..4 are magic and version (told apart before the tag); the rest fail the tag or are
    // malformed envelope bytes (mode, reserved): never accepted.
    EXPECT_NE(v, DecodeStatus::kOk) << "byte " << i;
    if (i >= 8) {
      EXPECT_EQ(v, DecodeStatus::kBadMac) << "byte " << i;
    }
  }
  wire::Key other = key();
  other[5] ^= 1;
  EXPECT_EQ(decode(other, clear, wire::DatagramMode::kClear).status, DecodeStatus::kBadMac);
}

// Both ends must agree on encryption: a datagram in the other mode is dropped as a mismatch,
// never read as the other kind; an outsider cannot fake a mismatch (the tag is checked first).
TEST(Messages, EncryptionModeMismatchIsRefused) {
  Builder b(Type::kGossip, "a", 1);
  EXPECT_EQ(decode(key(), b.seal(key(), 0, wire::DatagramMode::kClear), wire::DatagramMode::kSealed).status,
            DecodeStatus::kModeMismatch);
  EXPECT_EQ(decode(key(), b.seal(key(), 0, wire::DatagramMode::kSealed), wire::DatagramMode::kClear).status,
            DecodeStatus::kModeMismatch);
  auto clear = b.seal(key(), 0, wire::DatagramMode::kClear);
  clear[6] = static_cast<std::uint8_t>(wire::DatagramMode::kSealed);  // relabelled without the key
  EXPECT_EQ(decode(key(), clear, wire::DatagramMode::kSealed).status, DecodeStatus::kBadMac);
}

// A version 1 datagram (the former BLAKE2b-MAC frame) is recognised and refused as a version.
TEST(Messages, OldVersionIsRecognised) {
  wire::FrameHeader h{kMagic, 1, static_cast<std::uint8_t>(Type::kGossip), 0, 0};
  wire::Writer body;
  wire::FieldWriter(body).str(tag::kSender, "old");
  auto old = wire::seal_frame(key(), h, body.data());
  EXPECT_EQ(decode(key(), old).status, DecodeStatus::kBadVersion);
}

}  // namespace
}  // namespace osmo::gossip::msg
