// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer entry point for the gossip receive path: any byte string handed to Node::on_datagram,
// both as it is (bad MAC expected) and sealed with the gossip key (as sender "peer", at the
// node's current time, with a fresh nonce) so that the body decoder and the state machine behind
// it are reached. Build with clang and -DOSMO_FUZZ=ON:
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DOSMO_FUZZ=ON
//   ninja -C build-fuzz fuzz_gossip_datagram && ./build-fuzz/tests/gossip/fuzz_gossip_datagram
// The seeded mutation test in robustness_test.cpp covers the same path in every normal build.
#include <cstddef>
#include <cstdint>
#include <span>

#include "env/clock.hpp"
#include "env/random.hpp"
#include "gossip/messages.hpp"
#include "gossip/node.hpp"
#include "sim/network.hpp"
#include "wire/sealed_datagram.hpp"
#include "wire/mac.hpp"

namespace {

osmo::wire::Key fuzz_key() {
  osmo::wire::Key k{};
  k.fill(0x42);
  return k;
}

struct Harness {
  osmo::env::ManualClock clock{1'000'000};
  osmo::env::SeededRandom random{1};
  osmo::sim::Network net{clock, 1};
  std::unique_ptr<osmo::gossip::Node> node;

  Harness() {
    osmo::Logger::set_level(osmo::LogLevel::kOff);
    osmo::gossip::Config c;
    c.node_name = "fuzz";
    c.advertise = {"10.0.0.1", 7946};
    auto k = fuzz_key();
    c.key.assign(k.begin(), k.end());
    auto& t = net.add_endpoint(c.advertise, {});
    node =
        std::make_unique<osmo::gossip::Node>(c, clock, t, random, osmo::Logger("fuzz", "gossip"));
    node->start();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Harness h;
  std::span<const std::uint8_t> input(data, size);
  const osmo::env::Endpoint from{"10.0.0.2", 7946};
  h.node->on_datagram(from, input);
  if (size >= 1) {
    // First byte picks the type, the rest is the body.
    osmo::wire::DatagramHeader hdr;
    hdr.type = data[0];
    hdr.sender = "peer";
    hdr.sent_ms = static_cast<std::uint64_t>(h.clock.now_ms());
    hdr.nonce = osmo::wire::random_datagram_nonce();
    auto body = input.subspan(1);
    if (body.size() <= osmo::gossip::kMaxBodyBytes)
      h.node->on_datagram(from, osmo::wire::seal_datagram(osmo::gossip::msg::gossip_key(fuzz_key()),
                                                          osmo::gossip::msg::datagram_spec(), hdr, body));
  }
  h.clock.advance_ms(7);
  h.node->tick();
  h.net.deliver_due();
  return 0;
}
