// SPDX-License-Identifier: GPL-2.0-or-later
// Peer streams over real loopback TCP: the handshake authenticates both sides, a wrong secret or a
// garbage hello is refused and counted, and an accepted stream is handed to the service.
#include "daemon/peer_link.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>

#include <gtest/gtest.h>

#include "wire/mac.hpp"

namespace osmo::daemon {
namespace {

Key key_of(const char* secret) {
  std::string s(secret);
  return wire::derive_key({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

// A loopback port that is free now (bind to 0, read it back, close).
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The server counts a refusal after it has sent it, so the client may see the refusal first:
// wait (bounded, 1 s) for the count.
void wait_for_count(const std::atomic<std::uint64_t>& counter) {
  for (int i = 0; i < 100 && counter.load() == 0; ++i) ::usleep(10'000);
}

class PeerLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = env::Endpoint{"127.0.0.1", free_port()};
    server_ = std::make_unique<PeerServer>("server", key_of("the-cluster-secret"), Logger("server", "peer"));
    server_->add("echo", [this](UniqueFd conn, const Json& header, const PeerContext& ctx) {
      {
        std::lock_guard lk(mu_);
        seen_header_ = header;
        seen_peer_ = ctx.remote_node;
      }
      char buf[64];
      ssize_t n = ::read(conn.get(), buf, sizeof buf);
      if (n > 0) (void)!::write(conn.get(), buf, static_cast<std::size_t>(n));
    });
    ASSERT_TRUE(server_->start(endpoint_).ok());
  }

  env::Endpoint endpoint_;
  std::unique_ptr<PeerServer> server_;
  std::mutex mu_;
  Json seen_header_;
  std::string seen_peer_;
};

TEST_F(PeerLinkTest, AuthenticatedStreamReachesTheService) {
  auto conn = dial_peer("client", key_of("the-cluster-secret"), endpoint_,
                        Json{{"service", "echo"}, {"x", 7}}, 2000);
  ASSERT_TRUE(conn.ok()) << conn.error().str();
  ASSERT_EQ(::write(conn->get(), "ping", 4), 4);
  char buf[8] = {};
  ASSERT_EQ(::read(conn->get(), buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  std::lock_guard lk(mu_);
  EXPECT_EQ(seen_header_["x"], 7);
  EXPECT_EQ(seen_peer_, "client");
  EXPECT_EQ(server_->counters().accepted.load(), 1u);
}

TEST_F(PeerLinkTest, WrongSecretIsRefusedAndCounted) {
  DialFailure why = DialFailure::kUnreachable;
  auto conn = dial_peer("intruder", key_of("another-secret-entirely"), endpoint_, Json{{"service", "echo"}}, 2000, &why);
  ASSERT_FALSE(conn.ok());
  EXPECT_NE(conn.error().str().find("authentication"), std::string::npos) << conn.error().str();
  EXPECT_EQ(why, DialFailure::kNotAuthenticated);
  // The client notices first (the server's MAC does not verify); it never sends a request, so the
  // server sees the stream end during the handshake and counts a refusal.
  wait_for_count(server_->counters().refused_auth);
  EXPECT_EQ(server_->counters().refused_auth.load(), 1u);
  EXPECT_EQ(server_->counters().accepted.load(), 0u);
}

TEST_F(PeerLinkTest, UnknownServiceIsRefused) {
  DialFailure why = DialFailure::kUnreachable;
  auto conn = dial_peer("client", key_of("the-cluster-secret"), endpoint_, Json{{"service", "nope"}}, 2000, &why);
  ASSERT_FALSE(conn.ok());
  EXPECT_NE(conn.error().str().find("unknown service 'nope'"), std::string::npos) << conn.error().str();
  EXPECT_EQ(why, DialFailure::kRefused);
  wait_for_count(server_->counters().refused_service);
  EXPECT_EQ(server_->counters().refused_service.load(), 1u);
}

TEST_F(PeerLinkTest, GarbageHelloIsRefusedAndCounted) {
  auto addr = resolve_endpoint(endpoint_);
  ASSERT_TRUE(addr.ok());
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr->first), addr->second), 0);
  const char junk[] = "\x10\x00\x00\x00GET / HTTP/1.1\r\n\r\n";
  ASSERT_GT(::write(fd.get(), junk, sizeof junk - 1), 0);
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  ASSERT_GT(n, 5);
  EXPECT_EQ(buf[4], 1) << "verdict byte: refused";
  wait_for_count(server_->counters().refused_auth);
  EXPECT_EQ(server_->counters().refused_auth.load(), 1u);
}

// A raw client that speaks the handshake's framing (u32 length, bytes) without the key.
struct RawClient {
  UniqueFd fd;
  explicit RawClient(const env::Endpoint& ep) {
    auto addr = resolve_endpoint(ep);
    fd.reset(::socket(AF_INET, SOCK_STREAM, 0));
    timeval tv{3, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;  // the frames go out when written (Nagle would hold the second for an ACK)
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr->first), addr->second) != 0) fd.reset();
  }
  void send_frame(const std::string& bytes) {
    std::uint32_t len = static_cast<std::uint32_t>(bytes.size());
    std::string out(reinterpret_cast<const char*>(&len), 4);
    out += bytes;
    ASSERT_EQ(::write(fd.get(), out.data(), out.size()), static_cast<ssize_t>(out.size()));
  }
  std::string read_frame() {
    std::uint32_t len = 0;
    if (::recv(fd.get(), &len, 4, MSG_WAITALL) != 4 || len > 4096) return "<no frame>";
    std::string s(len, '\0');
    if (len > 0 && ::recv(fd.get(), s.data(), len, MSG_WAITALL) != static_cast<ssize_t>(len)) return "<short frame>";
    return s;
  }
  static std::string hello(std::uint16_t version, const std::string& name) {
    std::string h;
    const std::uint32_t magic = 0x504d534f;
    h.append(reinterpret_cast<const char*>(&magic), 4);
    h.append(reinterpret_cast<const char*>(&version), 2);
    h.append(2, '\0');     // flags
    h.append(16, '\x5a');  // client nonce
    h.append(32, '\x33');  // ephemeral X25519 key
    return h + name;
  }
};

// Whatever an unauthenticated client gets wrong (garbage, another version, a bad name, a guessed
// tag for a service that exists or one that does not, a tag of the wrong size), it receives the
// same bytes after the same delay: nothing tells it how close it came or what the node serves.
TEST_F(PeerLinkTest, NoOracleForTheUnauthenticated) {
  using Clock = std::chrono::steady_clock;
  struct Attempt {
    const char* what;
    std::string refusal;
    double delay_ms = 0;
  };
  std::vector<Attempt> attempts;
  auto run = [&](const char* what, auto&& play) {
    RawClient c(endpoint_);
    ASSERT_TRUE(c.fd) << what;
    Clock::time_point last_sent;
    std::string refusal = play(c, last_sent);
    attempts.push_back({what, refusal,
                        std::chrono::duration<double, std::milli>(Clock::now() - last_sent).count()});
  };
  auto refused_at_hello = [](std::string hello) {
    return [hello](RawClient& c, Clock::time_point& t) {
      c.send_frame(hello);
      t = Clock::now();
      return c.read_frame();
    };
  };
  auto refused_at_tag = [](std::string tag, std::string header) {
    return [tag, header](RawClient& c, Clock::time_point& t) {
      c.send_frame(RawClient::hello(2, "guesser"));
      std::string challenge = c.read_frame();
      EXPECT_EQ(challenge[0], 0) << "a well-formed hello is answered with a challenge";
      (void)c.read_frame();  // the server's tag
      c.send_frame(tag);
      c.send_frame(header);
      t = Clock::now();
      return c.read_frame();
    };
  };
  run("garbage", refused_at_hello("GET / HTTP/1.1\r\n\r\n"));
  run("other version", refused_at_hello(RawClient::hello(7, "guesser")));
  run("version 1", refused_at_hello(RawClient::hello(1, "guesser")));
  run("empty name", refused_at_hello(RawClient::hello(2, "")));
  // The client's tag frame: u32 header length, then the 32-byte tag.
  const std::string len18("\x12\0\0\0", 4);
  run("guessed tag, existing service", refused_at_tag(len18 + std::string(32, '\x11'), R"({"service":"echo"})"));
  run("guessed tag, unknown service", refused_at_tag(len18 + std::string(32, '\x11'), R"({"service":"nope"})"));
  run("tag of the wrong size", refused_at_tag(len18 + std::string(31, '\x11'), R"({"service":"echo"})"));
  ASSERT_EQ(attempts.size(), 7u);
  double lo = 1e9, hi = 0;
  for (const auto& a : attempts) {
    EXPECT_EQ(a.refusal, attempts[0].refusal) << a.what;
    lo = std::min(lo, a.delay_ms);
    hi = std::max(hi, a.delay_ms);
    std::printf("%-32s refused after %.1f ms\n", a.what, a.delay_ms);
  }
  EXPECT_EQ(attempts[0].refusal, std::string("\x01") + "authentication failed");
  EXPECT_GE(lo, 240.0) << "refusals are delayed";
  EXPECT_LT(hi - lo, 100.0) << "every refusal after the same delay";
  for (int i = 0; i < 100 && server_->counters().refused_auth.load() < 7; ++i) ::usleep(10'000);
  EXPECT_EQ(server_->counters().refused_auth.load(), 7u);
  EXPECT_EQ(server_->counters().refused_service.load(), 0u) << "no service was looked up";
}

TEST_F(PeerLinkTest, DeadPeerFailsWithinTheTimeout) {
  env::Endpoint nobody{"127.0.0.1", free_port()};
  DialFailure why = DialFailure::kRefused;
  auto conn = dial_peer("client", key_of("the-cluster-secret"), nobody, Json{{"service", "echo"}}, 500, &why);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().code, ECONNREFUSED) << conn.error().str();
  EXPECT_EQ(why, DialFailure::kUnreachable);
}

}  // namespace
}  // namespace osmo::daemon
