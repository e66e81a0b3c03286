// SPDX-License-Identifier: GPL-2.0-or-later
// Peer streams over real loopback TCP: the handshake authenticates both sides, a wrong secret or a
// garbage hello is refused and counted, and an accepted stream is handed to the service. The
// attacks of issue 13 run here as written: a man in the middle who reads, flips, replays,
// reorders or truncates the frames of an encrypted stream; a trickling handshake; a 1 MiB header;
// 1,100 unauthenticated connections; a nesting of 100,000.
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

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <thread>
#include <vector>

#include "base/json_limits.hpp"
#include "daemon/peer_pump.hpp"
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
    ::signal(SIGPIPE, SIG_IGN);  // as in the daemon: a write to a closed stream is an error, not death
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

// ---- A man in the middle of an encrypted stream -------------------------------------------------

enum class Attack { kNone, kFlip, kReplay, kReorder, kTruncate };

// Listens on a port of its own, connects its one client to the real server and copies bytes both
// ways, keeping a copy of everything; once armed, does one thing to what the client sends next.
class Middle {
 public:
  explicit Middle(const env::Endpoint& to) : to_(to) {
    endpoint = env::Endpoint{"127.0.0.1", free_port()};
    auto addr = resolve_endpoint(endpoint);
    listen_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(listen_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr->first), addr->second) != 0 ||
        ::listen(listen_.get(), 4) != 0)
      listen_.reset();
    acceptor_ = std::thread([this] { run(); });
  }
  ~Middle() {
    if (listen_) ::shutdown(listen_.get(), SHUT_RDWR);
    for (int fd : {client_.get(), server_.get()})
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    for (auto& t : copiers_) t.join();
  }
  void arm(Attack a) { attack_ = a; }
  std::string seen() {
    std::lock_guard lk(mu_);
    return seen_;
  }
  env::Endpoint endpoint;

 private:
  void run() {
    int c = ::accept(listen_.get(), nullptr, nullptr);
    if (c < 0) return;
    client_.reset(c);
    auto addr = resolve_endpoint(to_);
    server_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(server_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(client_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(server_.get(), reinterpret_cast<sockaddr*>(&addr->first), addr->second) != 0) return;
    copiers_.emplace_back([this] { copy(client_.get(), server_.get(), true); });
    copiers_.emplace_back([this] { copy(server_.get(), client_.get(), false); });
  }
  void copy(int from, int to, bool upstream) {
    std::vector<char> buf(1 << 16);
    std::string held;  // kReorder: the chunk held back
    for (;;) {
      const ssize_t n = ::read(from, buf.data(), buf.size());
      if (n <= 0) break;
      std::string chunk(buf.data(), static_cast<std::size_t>(n));
      {
        std::lock_guard lk(mu_);
        seen_ += chunk;
      }
      const Attack a = upstream ? attack_.exchange(Attack::kNone) : Attack::kNone;
      if (a == Attack::kFlip) chunk[chunk.size() / 2] ^= 0x20;
      if (a == Attack::kReplay) chunk += chunk;
      if (a == Attack::kReorder) {
        held = chunk;
        continue;
      }
      if (a == Attack::kTruncate) {
        (void)!::write(to, chunk.data(), chunk.size() / 2);
        ::shutdown(to, SHUT_WR);  // the server reads EOF in the middle of a frame
        break;
      }
      if (!held.empty()) chunk += std::exchange(held, {});  // the held chunk after the next one
      if (::write(to, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) break;
    }
    ::shutdown(to, SHUT_WR);
  }

  env::Endpoint to_;
  UniqueFd listen_, client_, server_;
  std::thread acceptor_;
  std::vector<std::thread> copiers_;
  std::atomic<Attack> attack_{Attack::kNone};
  std::mutex mu_;
  std::string seen_;
};

// Reads until EOF or 5 s; returns what came.
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return out + "<timeout>";
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

class EncryptedStreamTest : public PeerLinkTest {
 public:
  void SetUp() override {
    PeerLinkTest::SetUp();
    // sink: everything the client sends, until EOF; then the stream closes.
    server_->add("sink", [this](UniqueFd conn, const Json&, const PeerContext&) {
      std::string got = read_all(conn.get());
      sink_.set_value(got);
    });
  }
  std::string sink_result() {
    auto f = sink_.get_future();
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return "<no result>";
    return f.get();
  }
  std::promise<std::string> sink_;
};

TEST_F(EncryptedStreamTest, NeitherHeaderNorDataIsOnTheWireInClear) {
  Middle m(endpoint_);
  auto conn = dial_peer("client", key_of("the-cluster-secret"), m.endpoint,
                        Json{{"service", "echo"}, {"env", "PASSWORD=hunter2-header"}}, 2000);
  ASSERT_TRUE(conn.ok()) << conn.error().str();
  ASSERT_EQ(::write(conn->get(), "hunter2-data", 12), 12);
  EXPECT_EQ(read_all(conn->get()), "hunter2-data");
  {
    std::lock_guard lk(mu_);
    EXPECT_EQ(seen_header_["env"], "PASSWORD=hunter2-header");
  }
  const std::string wire = m.seen();
  EXPECT_GT(wire.size(), 100u);
  EXPECT_EQ(wire.find("hunter2"), std::string::npos);
  EXPECT_EQ(wire.find("echo"), std::string::npos) << "the service name is encrypted too";
  EXPECT_GE(server_->counters().encrypted.load(), 1u);
}

TEST_F(EncryptedStreamTest, SwitchedOffOnBothSidesTheStreamIsInClearAndStillAuthenticated) {
  server_->set_encryption(false);
  Middle m(endpoint_);
  auto conn = dial_peer("client", key_of("the-cluster-secret"), m.endpoint,
                        Json{{"service", "echo"}, {"env", "PASSWORD=hunter2-header"}}, 2000, nullptr, false);
  ASSERT_TRUE(conn.ok()) << conn.error().str();
  ASSERT_EQ(::write(conn->get(), "hunter2-data", 12), 12);
  EXPECT_EQ(read_all(conn->get()), "hunter2-data");
  const std::string wire = m.seen();
  EXPECT_NE(wire.find("hunter2-header"), std::string::npos);
  EXPECT_NE(wire.find("hunter2-data"), std::string::npos);
  EXPECT_EQ(server_->counters().encrypted.load(), 0u);
  // Authentication stays: another key is still refused.
  auto intruder = dial_peer("intruder", key_of("another-secret-entirely"), endpoint_, Json{{"service", "echo"}},
                            2000, nullptr, false);
  EXPECT_FALSE(intruder.ok());
  wait_for_count(server_->counters().refused_auth);  // the server's thread is done before we exit
  EXPECT_EQ(server_->counters().refused_auth.load(), 1u);
}

TEST_F(EncryptedStreamTest, EitherSideAskingIsEnough) {
  server_->set_encryption(false);
  Middle m(endpoint_);
  auto conn = dial_peer("client", key_of("the-cluster-secret"), m.endpoint,
                        Json{{"service", "echo"}, {"env", "hunter2"}}, 2000, nullptr, true);
  ASSERT_TRUE(conn.ok()) << conn.error().str();
  ASSERT_EQ(::write(conn->get(), "x", 1), 1);
  EXPECT_EQ(read_all(conn->get()), "x");
  EXPECT_EQ(m.seen().find("hunter2"), std::string::npos);
}

// A half close crosses the stream as over plain TCP (the relay and the image stream rely on it):
// the client shuts its sending side, the service reads EOF after the bytes, answers, closes; the
// client reads the answer, then EOF.
TEST_F(EncryptedStreamTest, AHalfCloseCrossesTheStream) {
  server_->add("count", [](UniqueFd conn, const Json&, const PeerContext&) {
    const std::string got = read_all(conn.get());
    const std::string answer = std::to_string(got.size());
    (void)!::write(conn.get(), answer.data(), answer.size());
  });
  auto conn = dial_peer("client", key_of("the-cluster-secret"), endpoint_, Json{{"service", "count"}}, 2000);
  ASSERT_TRUE(conn.ok()) << conn.error().str();
  const std::string data(3'000'000, 'z');  // several frames
  std::thread writer([&] {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::write(conn->get(), data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    ::shutdown(conn->get(), SHUT_WR);
  });
  EXPECT_EQ(read_all(conn->get()), "3000000");
  writer.join();
}

// Dials `sink` through a man in the middle, sends "first", then arms `attack` and sends more.
// Returns what the sink received; *client_saw is what the client read back (EOF expected).
struct AttackOutcome {
  std::string sink_got;
  std::string client_saw;
  std::uint64_t refused = 0, cut = 0;
};

AttackOutcome play(EncryptedStreamTest& t, const env::Endpoint& server, Attack attack,
                   std::string (EncryptedStreamTest::*result)()) {
  AttackOutcome o;
  PumpCounters& c = pump_counters();
  const std::uint64_t refused0 = c.frames_refused.load(), cut0 = c.streams_cut.load();
  Middle m(server);
  auto conn = dial_peer("client", key_of("the-cluster-secret"), m.endpoint, Json{{"service", "sink"}}, 2000);
  EXPECT_TRUE(conn.ok()) << conn.error().str();
  if (!conn.ok()) return o;
  EXPECT_EQ(::write(conn->get(), "first", 5), 5);
  ::usleep(100'000);  // its own frame, delivered before the attack
  m.arm(attack);
  EXPECT_EQ(::write(conn->get(), "second", 6), 6);
  ::usleep(100'000);
  (void)!::write(conn->get(), "third", 5);  // kReorder: the frame sent ahead of the held one
  o.sink_got = (t.*result)();
  o.client_saw = read_all(conn->get());
  for (int i = 0; i < 200 && c.frames_refused.load() == refused0 && c.streams_cut.load() == cut0; ++i) ::usleep(10'000);
  ::usleep(50'000);
  o.refused = c.frames_refused.load() - refused0;
  o.cut = c.streams_cut.load() - cut0;
  return o;
}

TEST_F(EncryptedStreamTest, ATamperedFrameClosesTheStreamAndIsCounted) {
  auto o = play(*this, endpoint_, Attack::kFlip, &EncryptedStreamTest::sink_result);
  EXPECT_EQ(o.sink_got, "first") << "nothing of or after the tampered frame reaches the service";
  EXPECT_EQ(o.client_saw, "") << "the client's end is closed (EOF)";
  EXPECT_EQ(o.refused, 1u);
}

TEST_F(EncryptedStreamTest, AReplayedFrameClosesTheStreamAndIsCounted) {
  auto o = play(*this, endpoint_, Attack::kReplay, &EncryptedStreamTest::sink_result);
  EXPECT_EQ(o.sink_got, "firstsecond") << "the original is delivered once, the copy is refused";
  EXPECT_EQ(o.client_saw, "");
  EXPECT_EQ(o.refused, 1u);
}

TEST_F(EncryptedStreamTest, ReorderedFramesCloseTheStreamAndAreCounted) {
  auto o = play(*this, endpoint_, Attack::kReorder, &EncryptedStreamTest::sink_result);
  EXPECT_EQ(o.sink_got, "first");
  EXPECT_EQ(o.client_saw, "");
  EXPECT_EQ(o.refused, 1u);
}

TEST_F(EncryptedStreamTest, ATruncatedFrameClosesTheStreamAndIsCounted) {
  auto o = play(*this, endpoint_, Attack::kTruncate, &EncryptedStreamTest::sink_result);
  EXPECT_EQ(o.sink_got, "first");
  EXPECT_EQ(o.client_saw, "");
  EXPECT_GE(o.cut, 1u) << "EOF in the middle of a frame, without an end frame";
  EXPECT_EQ(o.refused, 0u);
}

// ---- Denial of service ------------------------------------------------------------------------

// A client that sends its hello one byte every 200 ms: per-read timeouts would let it hold the
// server's thread for ever; the handshake's one deadline cuts it after 5 s.
TEST_F(PeerLinkTest, ATricklingHandshakeIsCutAtTheDeadline) {
  RawClient c(endpoint_);
  ASSERT_TRUE(c.fd);
  const std::string hello = RawClient::hello(2, "trickler");
  std::uint32_t len = static_cast<std::uint32_t>(hello.size());
  const std::string frame = std::string(reinterpret_cast<const char*>(&len), 4) + hello;
  const auto start = std::chrono::steady_clock::now();
  std::string refusal;
  for (std::size_t i = 0; i < frame.size() - 1; ++i) {  // never the last byte
    if (::send(c.fd.get(), &frame[i], 1, MSG_NOSIGNAL) != 1) break;
    pollfd p{c.fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      refusal = c.read_frame();
      break;
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("trickling hello: refused after %.2f s (%zu of %zu bytes sent)\n", s, std::min(frame.size(), std::size_t(s / 0.2)), frame.size());
  EXPECT_EQ(refusal, std::string("\x01") + "authentication failed");
  EXPECT_GE(s, 4.8);
  EXPECT_LT(s, 6.5) << "the deadline is for the whole handshake, not per read";
  wait_for_count(server_->counters().refused_auth);
  EXPECT_EQ(server_->counters().refused_auth.load(), 1u);
}

// A 1 MiB header from a client without the key: its length is authenticated by the client's tag,
// which is checked before a byte of the header is read, so the refusal comes at once (the 250 ms
// of every refusal), and nothing is allocated for it. A hello frame announcing 1 MiB is refused
// from its length alone.
TEST_F(PeerLinkTest, AOneMebibyteHeaderIsRefusedBeforeItIsRead) {
  {
    RawClient c(endpoint_);
    ASSERT_TRUE(c.fd);
    c.send_frame(RawClient::hello(2, "big-header"));
    std::string challenge = c.read_frame();
    ASSERT_EQ(challenge[0], 0);
    (void)c.read_frame();  // server tag
    const std::uint32_t mib = 1u << 20;
    const auto t0 = std::chrono::steady_clock::now();
    c.send_frame(std::string(reinterpret_cast<const char*>(&mib), 4) + std::string(32, '\x42'));
    std::uint32_t hdr_frame_len = mib;  // announces the header frame, sends none of its bytes
    ASSERT_EQ(::send(c.fd.get(), &hdr_frame_len, 4, MSG_NOSIGNAL), 4);
    const std::string refusal = c.read_frame();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(refusal, std::string("\x01") + "authentication failed");
    EXPECT_LT(ms, 1000.0) << "refused without waiting for the header";
  }
  {
    RawClient c(endpoint_);
    ASSERT_TRUE(c.fd);
    std::uint32_t mib = 1u << 20;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(::send(c.fd.get(), &mib, 4, MSG_NOSIGNAL), 4);
    const std::string refusal = c.read_frame();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(refusal, std::string("\x01") + "authentication failed");
    EXPECT_LT(ms, 1000.0);
  }
  for (int i = 0; i < 100 && server_->counters().refused_auth.load() < 2; ++i) ::usleep(10'000);
  EXPECT_EQ(server_->counters().refused_auth.load(), 2u);
}

// 1,100 connections from one address that never say a word: the first 64 wait out their
// deadline, the rest are closed at accept (no thread, no read), and a node at another address
// gets its stream meanwhile.
TEST_F(PeerLinkTest, ElevenHundredUnauthenticatedConnectionsDoNotLockOthersOut) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max < 2500) GTEST_SKIP() << "needs 2500 fds, hard limit " << rl.rlim_max;
  rlimit raised = rl;
  raised.rlim_cur = std::max<rlim_t>(rl.rlim_cur, 4096);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &raised), 0);
  auto addr = resolve_endpoint(endpoint_);
  ASSERT_TRUE(addr.ok());
  std::vector<UniqueFd> flood;
  for (int i = 0; i < 1100; ++i) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002);  // 127.0.0.2: the attacker's address
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src), 0);
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr->first), addr->second), 0) << i;
    flood.push_back(std::move(fd));
  }
  for (int i = 0; i < 300 && server_->counters().refused_flood.load() < 1100 - 64; ++i) ::usleep(10'000);
  EXPECT_EQ(server_->counters().refused_flood.load(), 1100u - 64u);
  const auto t0 = std::chrono::steady_clock::now();
  auto conn = dial_peer("client", key_of("the-cluster-secret"), endpoint_, Json{{"service", "echo"}}, 2000);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(conn.ok()) << conn.error().str();
  ASSERT_EQ(::write(conn->get(), "ok", 2), 2);
  EXPECT_EQ(read_all(conn->get()), "ok");
  std::printf("flood of 1100 from 127.0.0.2: %llu closed at accept; another node's stream in %.1f ms\n",
              static_cast<unsigned long long>(server_->counters().refused_flood.load()), ms);
  EXPECT_LT(ms, 1000.0);
  flood.clear();
  // The 64 held connections end now: their threads refuse them (250 ms) before the test exits.
  for (int i = 0; i < 300 && server_->counters().refused_auth.load() < 64; ++i) ::usleep(10'000);
  EXPECT_EQ(server_->counters().refused_auth.load(), 64u);
  (void)::setrlimit(RLIMIT_NOFILE, &rl);
}

TEST(JsonLimits, ANestingOf100000IsRefusedBeforeParsing) {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  const auto t0 = std::chrono::steady_clock::now();
  Status s = check_json_depth(deep);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("deeper than 64"), std::string::npos) << s.error().message;
  EXPECT_LT(ms, 50.0);
  EXPECT_TRUE(check_json_depth(R"({"spec":{"env":{"A":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]]"}}})").ok())
      << "brackets inside strings (and escaped quotes) do not count";
  EXPECT_TRUE(check_json_depth(std::string(64, '[') + std::string(64, ']')).ok());
  EXPECT_FALSE(check_json_depth(std::string(65, '{')).ok());
}

}  // namespace
}  // namespace osmo::daemon
