// SPDX-License-Identifier: GPL-2.0-or-later
// Gossip datagrams an attacker on the network captured and sends again, alters or relabels: a
// replay within the window is dropped and counted (dropped_replay) and changes nothing, a
// datagram sent outside the window is dropped, a flipped byte anywhere is dropped as forged, a
// datagram re-sent under another sender's name is dropped as forged, and encryption off still
// authenticates. The clock is injected: the tests move time, never sleep. The replay cache stays
// within its bounds under a flood.
#include <gtest/gtest.h>

#include <memory>

#include "cluster_harness.hpp"
#include "gossip/messages.hpp"
#include "gossip/replay_guard.hpp"
#include "wire/sealed_datagram.hpp"

namespace osmo::gossip {
namespace {

// A wall clock far from zero, as the daemon's is (ms since the epoch).
constexpr env::TimeMs kStart = 1'765'000'000'000;

wire::Key gossip_key_of_tests() {
  auto v = testing::test_key();
  wire::Key k{};
  std::copy(v.begin(), v.end(), k.begin());
  return msg::gossip_key(k);
}

// One node under test; the test speaks as "peer" from 10.0.0.2.
struct Victim {
  env::ManualClock clock{kStart};
  env::SeededRandom random{3};
  sim::Network net{clock, 3};
  std::unique_ptr<Node> node;
  const env::Endpoint from{"10.0.0.2", 7946};

  explicit Victim(bool encrypt = true) {
    Config c;
    c.node_name = "victim";
    c.advertise = {"10.0.0.1", 7946};
    c.key = testing::test_key();
    c.encrypt = encrypt;
    auto& t = net.add_endpoint(c.advertise, {});
    (void)net.add_endpoint(from, {});
    node = std::make_unique<Node>(c, clock, t, random, Logger("victim", "gossip"));
    node->start();
  }

  // A load message from "peer" saying its load is `load`, sealed now.
  std::vector<std::uint8_t> load_datagram(double load,
                                          wire::DatagramMode mode = wire::DatagramMode::kSealed,
                                          env::TimeMs sent_offset_ms = 0) {
    msg::Builder b(msg::Type::kLoad, "peer", 1, from);
    LoadInfo li;
    li.load = load;
    li.cpus = 4;
    EXPECT_TRUE(b.add_load({"peer", 0, li}));
    return b.seal(gossip_key_of_tests(), clock.now_ms() + sent_offset_ms, mode);
  }

  std::optional<double> load_of_peer() const {
    for (const auto& m : node->members())
      if (m.name == "peer" && m.load) return m.load->load;
    return std::nullopt;
  }
};

TEST(Replay, ReplayWithinTheWindowIsDroppedCountedAndChangesNothing) {
  Victim v;
  const auto old_load = v.load_datagram(0.25);
  v.node->on_datagram(v.from, old_load);
  ASSERT_EQ(v.load_of_peer(), 0.25);
  v.clock.advance_ms(1'000);
  v.node->on_datagram(v.from, v.load_datagram(3.0));
  ASSERT_EQ(v.load_of_peer(), 3.0);
  ASSERT_EQ(v.node->counters().dropped_replay, 0u);

  // The attacker replays the old "idle" datagram to attract jobs to a busy node: its load entry
  // (age 0 at the sender) would look fresher than the real one if it were accepted.
  v.clock.advance_ms(1'000);
  v.node->on_datagram(v.from, old_load);
  EXPECT_EQ(v.node->counters().dropped_replay, 1u);
  EXPECT_EQ(v.load_of_peer(), 3.0);
  v.clock.advance_ms(20'000);  // still inside the window: the nonce is remembered
  v.node->on_datagram(v.from, old_load);
  EXPECT_EQ(v.node->counters().dropped_replay, 2u);
  EXPECT_EQ(v.load_of_peer(), 3.0);
  // And later, outside the window, the send time refuses it.
  v.clock.advance_ms(60'000);
  v.node->on_datagram(v.from, old_load);
  EXPECT_EQ(v.node->counters().dropped_replay, 3u);
  EXPECT_EQ(v.load_of_peer(), 3.0);
  EXPECT_EQ(v.node->counters().dropped_bad_mac, 0u);
}

TEST(Replay, SendTimeOutsideTheWindowIsDropped) {
  Victim v;
  v.node->on_datagram(v.from,
                      v.load_datagram(1.0, wire::DatagramMode::kSealed, -kReplayWindowMs - 1));
  v.node->on_datagram(v.from,
                      v.load_datagram(1.0, wire::DatagramMode::kSealed, kReplayWindowMs + 1));
  EXPECT_EQ(v.node->counters().dropped_replay, 2u);
  EXPECT_FALSE(v.load_of_peer().has_value());
  // Within the window (a clock 29 s off) it is taken.
  v.node->on_datagram(
      v.from, v.load_datagram(1.0, wire::DatagramMode::kSealed, -(kReplayWindowMs - 1'000)));
  EXPECT_EQ(v.node->counters().dropped_replay, 2u);
  EXPECT_EQ(v.load_of_peer(), 1.0);
}

TEST(Replay, FlippedByteAnywhereIsDroppedAsForged) {
  Victim v;
  const auto good = v.load_datagram(2.0);
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (std::uint8_t bit : {0x01, 0x80}) {
      auto bad = good;
      bad[i] ^= bit;
      v.node->on_datagram(v.from, bad);
    }
  }
  const Counters& c = v.node->counters();
  // Magic (4 bytes) and version (1) are read before the tag, the mode and reserved bytes (2) are
  // checked as envelope fields: 2 flips each. Every other byte fails the tag.
  EXPECT_EQ(c.dropped_bad_version, 2u * 5);
  EXPECT_EQ(c.dropped_malformed, 2u * 2);
  EXPECT_EQ(c.dropped_bad_mac, 2u * (good.size() - 7));
  EXPECT_FALSE(v.load_of_peer().has_value()) << "an altered datagram changed the view";
  v.node->on_datagram(v.from, good);
  EXPECT_EQ(v.load_of_peer(), 2.0);
}

// A key holder (or a bug) relabels a captured datagram as coming from another node: the name in
// the envelope no longer matches the message's sender, and the datagram is dropped as forged.
// Without the key, the name cannot even be changed (it is encrypted and authenticated).
TEST(Replay, DatagramResentUnderAnotherSenderNameIsDropped) {
  Victim v;
  const auto captured = v.load_datagram(0.5);
  wire::OpenedDatagram o;
  ASSERT_EQ(wire::open_datagram(gossip_key_of_tests(), msg::datagram_spec(),
                                wire::DatagramMode::kSealed, captured, &o),
            wire::DatagramStatus::kOk);
  o.header.sender = "other";
  o.header.nonce = wire::random_datagram_nonce();
  v.node->on_datagram(
      v.from, wire::seal_datagram(gossip_key_of_tests(), msg::datagram_spec(), o.header, o.body));
  EXPECT_EQ(v.node->counters().dropped_bad_mac, 1u);
  EXPECT_FALSE(v.load_of_peer().has_value());

  // In clear mode the name is visible; overwriting it (same length, so the layout holds) fails
  // the tag.
  Victim clear(false);
  auto d = clear.load_datagram(0.5, wire::DatagramMode::kClear);
  const std::string text(d.begin(), d.end());
  const auto at = text.find("peer");
  ASSERT_NE(at, std::string::npos);
  std::memcpy(d.data() + at, "pear", 4);
  clear.node->on_datagram(clear.from, d);
  EXPECT_EQ(clear.node->counters().dropped_bad_mac, 1u);
  EXPECT_FALSE(clear.load_of_peer().has_value());
}

TEST(Replay, EncryptionOffStillAuthenticatesAndProtectsAgainstReplay) {
  Victim v(false);
  const auto d = v.load_datagram(1.5, wire::DatagramMode::kClear);
  v.node->on_datagram(v.from, d);
  EXPECT_EQ(v.load_of_peer(), 1.5);
  v.node->on_datagram(v.from, d);
  EXPECT_EQ(v.node->counters().dropped_replay, 1u);
  auto bad = d;
  bad[bad.size() / 2] ^= 0x04;
  v.node->on_datagram(v.from, bad);
  EXPECT_EQ(v.node->counters().dropped_bad_mac, 1u);
  // An encrypted datagram is never read by a node running in clear, nor the other way round.
  v.node->on_datagram(v.from, v.load_datagram(9.0, wire::DatagramMode::kSealed));
  EXPECT_EQ(v.node->counters().dropped_encryption_mismatch, 1u);
  Victim sealed_node;
  sealed_node.node->on_datagram(sealed_node.from,
                                sealed_node.load_datagram(9.0, wire::DatagramMode::kClear));
  EXPECT_EQ(sealed_node.node->counters().dropped_encryption_mismatch, 1u);
  EXPECT_EQ(v.load_of_peer(), 1.5);
  EXPECT_FALSE(sealed_node.load_of_peer().has_value());
}

wire::DatagramNonce nonce_of(std::uint64_t i) {
  wire::DatagramNonce n{};
  for (int b = 0; b < 8; ++b) n[b] = static_cast<std::uint8_t>(i >> (8 * b));
  return n;
}

// Memory stays bounded under a flood of authentic datagrams from many names, and nothing seen is
// ever accepted twice, even after its entry was forgotten.
TEST(Replay, GuardStaysBoundedAndNeverAcceptsAReplay) {
  ReplayGuard g(kReplayWindowMs, 64, 16);
  env::TimeMs now = kStart;
  struct Sent {
    std::string who;
    env::TimeMs at;
    wire::DatagramNonce nonce;
  };
  std::vector<Sent> sent;
  for (std::uint64_t i = 0; i < 20'000; ++i) {
    now += 1;
    Sent s{"n" + std::to_string(i % 500), now, nonce_of(i)};
    ASSERT_EQ(g.admit(s.who, s.at, s.nonce, now), ReplayGuard::Verdict::kFresh) << i;
    sent.push_back(s);
    ASSERT_LE(g.senders(), 64u);
    ASSERT_LE(g.entries(), 64u * 16);
  }
  // One sender flooding: its own cache is capped.
  for (std::uint64_t i = 0; i < 5'000; ++i) {
    now += 1;
    Sent s{"flood", now, nonce_of(1'000'000 + i)};
    ASSERT_EQ(g.admit(s.who, s.at, s.nonce, now), ReplayGuard::Verdict::kFresh);
    sent.push_back(s);
  }
  EXPECT_LE(g.entries(), 64u * 16);
  int accepted = 0;
  for (const auto& s : sent)
    accepted += g.admit(s.who, s.at, s.nonce, now) == ReplayGuard::Verdict::kFresh;
  EXPECT_EQ(accepted, 0) << "a replay was accepted after its entry was forgotten";
  // Fresh traffic still passes after the flood.
  EXPECT_EQ(g.admit("n1", now, nonce_of(99'999'999), now), ReplayGuard::Verdict::kFresh);
}

}  // namespace
}  // namespace osmo::gossip
