// SPDX-License-Identifier: GPL-2.0-or-later
// Hostile input: datagrams with a bad MAC, a wrong version or magic, or a malformed body are
// dropped and counted, never crash the node and never change its view. A seeded mutation fuzzer
// corrupts thousands of valid datagrams captured from a live cluster (bit flips, truncation,
// extension, byte overwrites, splices), both as they are (as an attacker would send them) and
// with the body mutated and sealed again with the gossip key (as a buggy peer would), and feeds
// them to a node.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "cluster_harness.hpp"
#include "gossip/messages.hpp"
#include "wire/sealed_datagram.hpp"

namespace osmo::gossip {
namespace {

using testing::Cluster;

std::vector<std::vector<std::uint8_t>> capture_traffic(Cluster& c, int nodes, env::TimeMs ms) {
  std::vector<std::vector<std::uint8_t>> out;
  // Wrap each node's receiver so that we see what it receives.
  for (int i = 0; i < nodes; ++i) {
    c.net().set_receiver(Cluster::addr(i),
                         [&c, &out, i](const env::Endpoint& from, std::span<const std::uint8_t> d) {
                           if (out.size() < 4000) out.emplace_back(d.begin(), d.end());
                           c.node(i).on_datagram(from, d);
                         });
  }
  c.run_for(ms);
  return out;
}

// A node's view reduced to what must not change: names, states, incarnations, loads.
std::string fingerprint(const Node& n) {
  std::string s;
  for (const auto& v : n.members()) {
    s += v.name + ":" + to_string(v.state) + ":" + std::to_string(v.incarnation) + ":" +
         v.addr.str();
    if (v.load) s += ":" + std::to_string(v.load->runnable);
    s += ";";
  }
  return s;
}

// The key datagrams are sealed with: the gossip subkey of the tests' cluster key.
wire::Key cluster_key() {
  auto v = testing::test_key();
  wire::Key k{};
  std::copy(v.begin(), v.end(), k.begin());
  return msg::gossip_key(k);
}

std::vector<std::uint8_t> seal_raw(const wire::Key& key, std::uint8_t version, msg::Type type,
                                   const std::string& sender, env::TimeMs sent_ms,
                                   std::span<const std::uint8_t> body) {
  wire::DatagramSpec spec = msg::datagram_spec();
  spec.version = version;
  wire::DatagramHeader h;
  h.type = static_cast<std::uint8_t>(type);
  h.sender = sender;
  h.sent_ms = static_cast<std::uint64_t>(sent_ms);
  h.nonce = wire::random_datagram_nonce();
  return wire::seal_datagram(key, spec, h, body);
}

TEST(Robustness, BadDatagramsAreCountedAndIgnored) {
  Cluster c(31);
  c.add_nodes(3);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  Node& n = c.node(0);
  const std::string before = fingerprint(n);
  const Counters base = n.counters();
  env::Endpoint evil{"10.66.6.6", 666};

  // A valid suspicion of node 1 at a high incarnation, signed with the wrong key.
  msg::Builder b(msg::Type::kGossip, "n2", 99, Cluster::addr(2));
  ASSERT_TRUE(b.add_update({"n1", Cluster::addr(1), 1000, MemberState::kDead}));
  wire::Key wrong = cluster_key();
  wrong[7] ^= 0x10;
  n.on_datagram(evil, b.seal(wrong, c.now()));
  EXPECT_EQ(n.counters().dropped_bad_mac, base.dropped_bad_mac + 1);

  // Same message, correct key, but a version we do not speak (authentic under that version).
  wire::Writer gossip_body;
  wire::FieldWriter(gossip_body).str(msg::tag::kSender, "n2");
  n.on_datagram(evil, seal_raw(cluster_key(), msg::kVersion + 1, msg::Type::kGossip, "n2", c.now(),
                               gossip_body.data()));
  EXPECT_EQ(n.counters().dropped_bad_version, base.dropped_bad_version + 1);

  auto magic = b.seal(cluster_key(), c.now());
  magic[0] = 'X';
  n.on_datagram(evil, magic);
  EXPECT_EQ(n.counters().dropped_bad_version, base.dropped_bad_version + 2);

  // Correctly signed, but the body lies about a record's length.
  wire::Writer body;
  wire::FieldWriter f(body);
  f.str(msg::tag::kSender, "n2");
  body.u8(msg::tag::kUpdate);
  body.varint(200);  // claims 200 bytes, has 3
  body.raw(std::vector<std::uint8_t>{1, 2, 3});
  n.on_datagram(evil, seal_raw(cluster_key(), msg::kVersion, msg::Type::kGossip, "n2", c.now(), body.data()));
  EXPECT_EQ(n.counters().dropped_malformed, base.dropped_malformed + 1);

  // Empty input and a runt (right magic and version, too short for an envelope) are malformed;
  // big junk fails the magic check first.
  n.on_datagram(evil, {});
  std::vector<std::uint8_t> runt = b.seal(cluster_key(), c.now());
  runt.resize(wire::datagram_overhead(1) - 1);
  n.on_datagram(evil, runt);
  EXPECT_EQ(n.counters().dropped_malformed, base.dropped_malformed + 3);
  std::vector<std::uint8_t> junk(5000, 0xab);
  n.on_datagram(evil, junk);
  EXPECT_EQ(n.counters().dropped_bad_version, base.dropped_bad_version + 3);

  EXPECT_EQ(fingerprint(n), before);
  EXPECT_EQ(n.counters().received, base.received + 7);
  // And the cluster carries on.
  c.run_for(3'000);
  EXPECT_TRUE(c.all_alive());
}

TEST(Robustness, SeededMutationFuzzNeverCrashesNorChangesTheView) {
  Cluster c(32);
  c.add_nodes(4);
  ASSERT_GE(c.run_until([&] { return c.all_alive(); }, 3'000), 0);
  auto corpus = capture_traffic(c, 4, 15'000);
  ASSERT_GT(corpus.size(), 300u);

  // A separate victim node, not ticked, so nothing but the fuzz input could change its view.
  env::ManualClock clock(c.now());  // the corpus's send times are within the replay window
  env::SeededRandom rnd(5);
  sim::Network quiet(clock, 5);
  Config cfg = c.config(9);
  cfg.seeds.clear();
  auto& t = quiet.add_endpoint(cfg.advertise, {});
  Node victim(cfg, clock, t, rnd, Logger("victim", "gossip"));
  victim.start();
  // Teach it a view first, with valid traffic.
  for (const auto& d : corpus) victim.on_datagram({"10.0.0.1", 7946}, d);
  const std::string before = fingerprint(victim);
  ASSERT_NE(before.find("n3"), std::string::npos);
  const Counters base = victim.counters();

  env::SeededRandom fuzz(0xf022);
  const wire::Key k = cluster_key();
  const int kIterations = 20'000;
  int resigned_ok = 0;
  auto mutate = [&](std::vector<std::uint8_t>& d) {
    int mutations = 1 + static_cast<int>(fuzz.uniform(4));
    for (int m = 0; m < mutations; ++m) {
      switch (fuzz.uniform(6)) {
        case 0:  // flip a bit
          if (!d.empty())
            d[fuzz.uniform(d.size())] ^= static_cast<std::uint8_t>(1u << fuzz.uniform(8));
          break;
        case 1:  // truncate
          d.resize(fuzz.uniform(d.size() + 1));
          break;
        case 2:  // append junk
          for (auto n = fuzz.uniform(64); n > 0; --n)
            d.push_back(static_cast<std::uint8_t>(fuzz.next_u64()));
          break;
        case 3:  // overwrite a byte with an interesting value
          if (!d.empty()) {
            static const std::uint8_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff, 64, 65};
            d[fuzz.uniform(d.size())] = kInteresting[fuzz.uniform(sizeof kInteresting)];
          }
          break;
        case 4: {  // splice in a piece of another datagram
          const auto& o = corpus[fuzz.uniform(corpus.size())];
          if (!d.empty() && !o.empty()) {
            std::size_t at = fuzz.uniform(d.size());
            std::size_t from = fuzz.uniform(o.size());
            std::size_t len =
                std::min<std::size_t>(fuzz.uniform(32), std::min(d.size() - at, o.size() - from));
            std::memcpy(d.data() + at, o.data() + from, len);
          }
          break;
        }
        case 5:  // duplicate a range (changes lengths downstream)
          if (d.size() > 16) {
            std::size_t at = fuzz.uniform(d.size() - 8);
            d.insert(d.begin() + static_cast<std::ptrdiff_t>(at),
                     d.begin() + static_cast<std::ptrdiff_t>(at),
                     d.begin() + static_cast<std::ptrdiff_t>(at + 8));
          }
          break;
      }
    }
  };
  for (int it = 0; it < kIterations; ++it) {
    std::vector<std::uint8_t> d = corpus[fuzz.uniform(corpus.size())];
    if (fuzz.uniform(2) == 0) {
      mutate(d);  // an attacker's bytes
    } else {
      // A buggy peer: a mutated body, sealed properly (fresh nonce, current time), so that the
      // body decoder itself is under test.
      wire::OpenedDatagram o;
      ASSERT_EQ(wire::open_datagram(k, msg::datagram_spec(), wire::DatagramMode::kSealed, d, &o),
                wire::DatagramStatus::kOk);
      mutate(o.body);
      if (o.body.size() > kMaxBodyBytes) o.body.resize(kMaxBodyBytes);
      o.header.nonce = wire::random_datagram_nonce();
      o.header.sent_ms = static_cast<std::uint64_t>(clock.now_ms());
      d = wire::seal_datagram(k, msg::datagram_spec(), o.header, o.body);
    }
    auto verdict = msg::decode(k, d);
    if (verdict.status == msg::DecodeStatus::kOk) {
      // A mutation that still decodes is a valid message (e.g. a flipped bit in a load number
      // or an incarnation): feeding it would legitimately change the view, so skip it.
      ++resigned_ok;
      continue;
    }
    victim.on_datagram({"10.0.0.2", 7946}, d);
  }
  EXPECT_EQ(fingerprint(victim), before);
  const Counters& cn = victim.counters();
  auto drops = [](const Counters& x) {
    return x.dropped_bad_mac + x.dropped_bad_version + x.dropped_malformed + x.dropped_foreign +
           x.dropped_replay;
  };
  // Every corrupted datagram was dropped, and counted exactly once.
  EXPECT_EQ(drops(cn) - drops(base), static_cast<std::uint64_t>(kIterations - resigned_ok));
  EXPECT_GT(cn.dropped_malformed, 1000u) << "the re-sealed half should reach the body decoder";
  EXPECT_GT(cn.dropped_bad_mac, 1000u);
  std::printf(
      "fuzz: %d inputs, %d still valid (skipped), bad_mac=%llu bad_version=%llu malformed=%llu\n",
      kIterations, resigned_ok, static_cast<unsigned long long>(cn.dropped_bad_mac),
      static_cast<unsigned long long>(cn.dropped_bad_version),
      static_cast<unsigned long long>(cn.dropped_malformed));
}

}  // namespace
}  // namespace osmo::gossip

namespace osmo::gossip {
namespace {

// A single node on a network where we capture what it sends.
struct Lone {
  env::ManualClock clock{2'000'000};
  env::SeededRandom random{9};
  sim::Network net{clock, 9};
  std::vector<std::pair<env::Endpoint, std::vector<std::uint8_t>>> inbox;  // what "me" received
  std::unique_ptr<Node> node;
  env::Transport* me = nullptr;

  Lone() {
    Config c;
    c.node_name = "lone";
    c.advertise = {"10.0.0.1", 7946};
    c.key = testing::test_key();
    auto& t = net.add_endpoint(c.advertise,
                               [this](const env::Endpoint& from, std::span<const std::uint8_t> d) {
                                 node->on_datagram(from, d);
                               });
    for (const char* host : {"10.0.0.2", "10.0.0.3"}) {
      env::Transport& tr = net.add_endpoint(
          {host, 7946}, [this, host](const env::Endpoint&, std::span<const std::uint8_t> d) {
            inbox.emplace_back(env::Endpoint{host, 7946},
                               std::vector<std::uint8_t>(d.begin(), d.end()));
          });
      if (me == nullptr) me = &tr;  // we speak from 10.0.0.2
    }
    node = std::make_unique<Node>(c, clock, t, random, Logger("lone", "gossip"));
    node->start();
  }
  void deliver() {
    clock.advance_ms(20);
    net.deliver_due();
  }
};

wire::Key key_of_tests() {
  auto v = testing::test_key();
  wire::Key k{};
  std::copy(v.begin(), v.end(), k.begin());
  return msg::gossip_key(k);
}

TEST(Robustness, PingForAnotherNameIsNotAcked) {
  // A process restarted on an address that used to belong to another node must not answer for it.
  Lone l;
  msg::Builder ping(msg::Type::kPing, "prober", 1, {"10.0.0.2", 7946});
  ping.seq(77);
  ping.target("somebody-else");
  l.me->send({"10.0.0.1", 7946}, ping.seal(key_of_tests(), l.clock.now_ms()));
  l.deliver();
  l.deliver();
  EXPECT_EQ(l.node->counters().dropped_foreign, 1u);
  for (auto& [to, d] : l.inbox) EXPECT_NE(msg::decode(key_of_tests(), d).msg.type, msg::Type::kAck);

  msg::Builder ok(msg::Type::kPing, "prober", 1, {"10.0.0.2", 7946});
  ok.seq(78);
  ok.target("lone");
  l.me->send({"10.0.0.1", 7946}, ok.seal(key_of_tests(), l.clock.now_ms()));
  l.deliver();
  l.deliver();
  bool acked = false;
  for (auto& [to, d] : l.inbox) {
    auto m = msg::decode(key_of_tests(), d);
    acked |= m.msg.type == msg::Type::kAck && m.msg.seq == 78;
  }
  EXPECT_TRUE(acked);
}

TEST(Robustness, SyncIsAnsweredAtTheSignedAddressNotTheSource) {
  // A replayed join request with a forged source address: the (large) answer goes to the address
  // signed inside the request, never to the forged source.
  Lone l;
  msg::Builder join(msg::Type::kSync, "joiner", 1, {"10.0.0.3", 7946});
  join.flags(msg::kSyncReplyWanted | msg::kSyncJoin);
  ASSERT_TRUE(join.add_member({"joiner", {"10.0.0.3", 7946}, 1, MemberState::kAlive}));
  l.me->send({"10.0.0.1", 7946}, join.seal(key_of_tests(), l.clock.now_ms()));  // arrives "from" 10.0.0.2
  l.deliver();
  l.deliver();
  int to_signed = 0, to_source = 0;
  for (auto& [to, d] : l.inbox) {
    if (msg::decode(key_of_tests(), d).msg.type != msg::Type::kSync) continue;
    (to.host == "10.0.0.3" ? to_signed : to_source)++;
  }
  EXPECT_GE(to_signed, 1);
  EXPECT_EQ(to_source, 0);
}

}  // namespace
}  // namespace osmo::gossip
