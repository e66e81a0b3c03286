// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/peer_link.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>

#include <cstring>

#include "base/fd_io.hpp"
#include "platform/linux/socket.hpp"
#include "wire/mac.hpp"

namespace osmo::daemon {
namespace {

constexpr std::uint32_t kPeerMagic = 0x504d534f;  // "OSMP" little-endian
constexpr std::uint16_t kPeerVersion = 1;
constexpr std::size_t kNonceBytes = 16;
constexpr std::size_t kMaxNameBytes = 255;
constexpr std::size_t kMaxHeaderBytes = 1 << 20;
constexpr int kHandshakeTimeoutMs = 5000;
constexpr int kMaxPeerStreams = 1024;  // concurrent streams served; more are refused
// Every refusal of an unauthenticated client is the same frame, sent this long after the input
// that failed was read: how a connection fails (a malformed hello, another version, a wrong tag,
// a header naming no service) tells a party without the cluster key nothing, by content or by
// timing. Long against the microseconds the checks take and the jitter of a LAN, short enough
// that a refused connection holds its thread briefly (a silent client holds one for the 5 s
// handshake deadline anyway).
constexpr int kAuthRefusalDelayMs = 250;
constexpr std::string_view kAuthRefusalText = "authentication failed";

enum Verdict : std::uint8_t { kAccepted = 0, kRefusedAuth = 1, kRefusedService = 2 };

void set_io_timeout(int fd, int timeout_ms) {
  platform::set_receive_timeout(fd, timeout_ms);
  platform::set_send_timeout(fd, timeout_ms);
}

Status send_all(int fd, const void* data, std::size_t n) {
  const IoResult w = write_full(fd, data, n, WriteMode::kSocket);
  if (!w.ok()) return Error{w.error, "peer stream: send"};
  return ok_status();
}

Status recv_exact(int fd, void* data, std::size_t n) {
  const IoResult r = read_full(fd, data, n);
  if (r.error == EAGAIN) return make_error("peer stream: handshake timed out");  // SO_RCVTIMEO
  if (!r.ok()) return Error{r.error, "peer stream: receive"};
  if (r.bytes < n) return make_error("peer stream: closed by peer during handshake");
  return ok_status();
}

// Little framing for handshake messages: u32 length + bytes.
Status write_frame(int fd, const std::string& bytes) {
  std::uint32_t len = static_cast<std::uint32_t>(bytes.size());
  std::string out(reinterpret_cast<const char*>(&len), 4);
  out += bytes;
  return send_all(fd, out.data(), out.size());
}

Result<std::string> read_frame(int fd, std::size_t max_bytes) {
  std::uint32_t len = 0;
  OSMO_TRY(recv_exact(fd, &len, 4));
  if (len > max_bytes) return make_error("peer stream: frame of {} bytes exceeds {}", len, max_bytes);
  std::string s(len, '\0');
  OSMO_TRY(recv_exact(fd, s.data(), len));
  return s;
}

struct Hello {
  std::uint32_t magic = kPeerMagic;
  std::uint16_t version = kPeerVersion;
  std::uint16_t reserved = 0;
  std::uint8_t nonce[kNonceBytes] = {};
};
static_assert(sizeof(Hello) == 24);

std::string encode_hello(const Hello& h, const std::string& name) {
  std::string s(reinterpret_cast<const char*>(&h), sizeof h);
  s += name;
  return s;
}

Result<std::pair<Hello, std::string>> decode_hello(const std::string& frame) {
  if (frame.size() < sizeof(Hello)) return make_error("peer stream: short hello");
  Hello h;
  std::memcpy(&h, frame.data(), sizeof h);
  if (h.magic != kPeerMagic) return make_error("peer stream: bad magic");
  if (h.version != kPeerVersion)
    return make_error("peer stream: protocol version {} (we speak {})", h.version, kPeerVersion);
  std::string name = frame.substr(sizeof h);
  if (name.empty() || name.size() > kMaxNameBytes) return make_error("peer stream: bad node name");
  return std::make_pair(h, name);
}

// The transcript both MACs cover: role label, both nonces, both names (length-prefixed), extra.
std::string transcript(std::string_view role, const Hello& client, const Hello& server,
                       const std::string& client_name, const std::string& server_name,
                       std::string_view extra) {
  std::string t(role);
  t.append(reinterpret_cast<const char*>(client.nonce), kNonceBytes);
  t.append(reinterpret_cast<const char*>(server.nonce), kNonceBytes);
  t.push_back(static_cast<char>(client_name.size()));
  t += client_name;
  t.push_back(static_cast<char>(server_name.size()));
  t += server_name;
  t += extra;
  return t;
}

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string tag_of(const Key& key, std::string_view data) {
  auto tag = wire::mac(key, bytes_of(data));
  return std::string(reinterpret_cast<const char*>(tag.data()), tag.size());
}

bool tag_ok(const Key& key, std::string_view data, std::string_view tag) {
  if (tag.size() != wire::kMacBytes) return false;
  return wire::verify_mac(key, bytes_of(data), bytes_of(tag));
}

env::Endpoint endpoint_of(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  env::Endpoint ep;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    ep.port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    ep.port = ntohs(a->sin6_port);
  }
  ep.host = host;
  return ep;
}

}  // namespace

Result<std::pair<sockaddr_storage, socklen_t>> resolve_endpoint(const env::Endpoint& ep) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(ep.port);
  int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return make_error("resolve {}: {}", ep.str(), ::gai_strerror(rc));
  sockaddr_storage ss{};
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  socklen_t len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return std::make_pair(ss, len);
}

PeerServer::PeerServer(std::string node_name, Key key, Logger log) : shared_(std::make_shared<Shared>()) {
  shared_->node_name = std::move(node_name);
  shared_->key = key;
  shared_->log = std::move(log);
}

PeerServer::~PeerServer() { stop(); }

void PeerServer::add(std::string service, PeerHandler handler) {
  std::lock_guard lk(shared_->mu);
  shared_->handlers[std::move(service)] = std::move(handler);
}

Status PeerServer::start(const env::Endpoint& listen) {
  OSMO_ASSIGN_OR_RETURN(auto addr, resolve_endpoint(listen));
  listen_fd_.reset(::socket(addr.first.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_) return errno_error("socket(TCP)");
  int one = 1;
  ::setsockopt(listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr.first), addr.second) != 0)
    return errno_error("bind TCP {}", listen.str());
  if (::listen(listen_fd_.get(), 512) != 0) return errno_error("listen TCP {}", listen.str());
  acceptor_ = std::thread([this] { accept_loop(); });
  return ok_status();
}

void PeerServer::stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_) ::shutdown(listen_fd_.get(), SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  listen_fd_.reset();
}

void PeerServer::accept_loop() {
  while (!stopping_.load()) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int c = ::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_.load() || errno == EINVAL) return;
      shared_->log.warn("accept on peer port failed: {}", std::strerror(errno));
      if (errno == EMFILE || errno == ENFILE) ::usleep(50'000);
      continue;
    }
    UniqueFd conn(c);
    if (shared_->active.load() >= kMaxPeerStreams) {
      shared_->log.warn("peer port: refusing connection from {}, {} streams open", endpoint_of(ss).str(),
                        kMaxPeerStreams);
      continue;
    }
    ++shared_->active;
    std::thread([shared = shared_, conn = std::move(conn), remote = endpoint_of(ss)]() mutable {
      serve(shared, std::move(conn), remote);
      --shared->active;
    }).detach();
  }
}

void PeerServer::serve(const std::shared_ptr<Shared>& shared, UniqueFd conn, env::Endpoint remote) {
  Shared& sh = *shared;
  int fd = conn.get();
  set_io_timeout(fd, kHandshakeTimeoutMs);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  // Counted last, once the refusal is logged and sent: whoever waits for the counter (a test)
  // then finds the connection's work done. An authenticated client (service refusals) gets the
  // precise reason; an unauthenticated one always the same frame after the same delay, and only
  // our log says what was wrong.
  auto refuse = [&](Verdict v, const std::string& why) {
    sh.log.warn("peer stream from {} refused: {}", remote.str(), why);
    std::string verdict(1, static_cast<char>(v));
    if (v == kRefusedAuth) {
      ::usleep(static_cast<useconds_t>(kAuthRefusalDelayMs) * 1000);
      verdict += kAuthRefusalText;
    } else {
      verdict += why;
    }
    (void)write_frame(fd, verdict);
    (v == kRefusedService ? sh.counters.refused_service : sh.counters.refused_auth)++;
  };

  auto hello_frame = read_frame(fd, sizeof(Hello) + kMaxNameBytes);
  if (!hello_frame.ok()) return refuse(kRefusedAuth, hello_frame.error().str());
  auto hello = decode_hello(*hello_frame);
  if (!hello.ok()) return refuse(kRefusedAuth, hello.error().str());
  const auto& [client, client_name] = *hello;

  Hello server;
  randombytes_buf(server.nonce, kNonceBytes);
  // The challenge frame starts with a verdict byte too, so a refusal of the hello reads the same.
  std::string challenge = std::string(1, static_cast<char>(kAccepted)) + encode_hello(server, sh.node_name);
  std::string server_tag =
      tag_of(sh.key, transcript("osmo-peer-server", client, server, client_name, sh.node_name, ""));
  if (!write_frame(fd, challenge).ok() || !write_frame(fd, server_tag).ok()) return;

  auto client_tag = read_frame(fd, wire::kMacBytes);
  if (!client_tag.ok()) return refuse(kRefusedAuth, client_tag.error().str());
  auto header_bytes = read_frame(fd, kMaxHeaderBytes);
  if (!header_bytes.ok()) return refuse(kRefusedAuth, header_bytes.error().str());
  if (!tag_ok(sh.key, transcript("osmo-peer-client", client, server, client_name, sh.node_name, *header_bytes),
              *client_tag))
    return refuse(kRefusedAuth, "bad MAC (different cluster secret?)");

  Json header = Json::parse(*header_bytes, nullptr, false);
  if (header.is_discarded() || !header.is_object() || !header.contains("service") ||
      !header["service"].is_string())
    return refuse(kRefusedService, "malformed request header");
  std::string service = header["service"].get<std::string>();
  PeerHandler handler;
  {
    std::lock_guard lk(sh.mu);
    if (auto it = sh.handlers.find(service); it != sh.handlers.end()) handler = it->second;
  }
  if (!handler) return refuse(kRefusedService, fmt::format("unknown service '{}'", service));
  if (!write_frame(fd, std::string(1, static_cast<char>(kAccepted))).ok()) return;
  ++sh.counters.accepted;
  set_io_timeout(fd, 0);  // the service sets its own deadlines
  PeerContext ctx{remote, client_name};
  try {
    handler(std::move(conn), header, ctx);
  } catch (const std::exception& e) {
    sh.log.error("peer service '{}' from {} failed: {}", service, remote.str(), e.what());
  }
}

Result<UniqueFd> dial_peer(const std::string& my_name, const Key& key, const env::Endpoint& to,
                           const Json& header, int timeout_ms, DialFailure* why) {
  DialFailure unused;
  DialFailure& failure = why != nullptr ? *why : unused;
  failure = DialFailure::kUnreachable;  // until the peer has answered
  OSMO_ASSIGN_OR_RETURN(auto addr, resolve_endpoint(to));
  UniqueFd conn(::socket(addr.first.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!conn) return errno_error("socket(TCP)");
  int fd = conn.get();
  // Non-blocking connect so that a dead node costs at most timeout_ms, not the kernel's minutes.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr.first), addr.second) != 0) {
    if (errno != EINPROGRESS) return errno_error("connect to {}", to.str());
    pollfd p{fd, POLLOUT, 0};
    int rc = ::poll(&p, 1, timeout_ms);
    if (rc == 0) return Error{ETIMEDOUT, fmt::format("connect to {}", to.str())};
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (rc < 0 || err != 0) return Error{err != 0 ? err : errno, fmt::format("connect to {}", to.str())};
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  set_io_timeout(fd, timeout_ms);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  Hello client;
  randombytes_buf(client.nonce, kNonceBytes);
  OSMO_TRY(write_frame(fd, encode_hello(client, my_name)));
  OSMO_ASSIGN_OR_RETURN(std::string challenge, read_frame(fd, 1 + sizeof(Hello) + kMaxNameBytes + 4096));
  if (challenge.empty()) return make_error("{}: empty challenge", to.str());
  if (challenge[0] != static_cast<char>(kAccepted)) {
    failure = DialFailure::kNotAuthenticated;  // the hello is refused only as unauthenticated
    return make_error("{} refused the connection: {}", to.str(), challenge.substr(1));
  }
  auto server_hello = decode_hello(challenge.substr(1));
  if (!server_hello.ok()) {
    failure = DialFailure::kNotAuthenticated;  // not our handshake: not a node of this cluster
    return make_error("{}: {}", to.str(), server_hello.error().message);
  }
  const auto& [server, server_name] = *server_hello;
  OSMO_ASSIGN_OR_RETURN(std::string server_tag, read_frame(fd, wire::kMacBytes));
  if (!tag_ok(key, transcript("osmo-peer-server", client, server, my_name, server_name, ""), server_tag)) {
    failure = DialFailure::kNotAuthenticated;
    return make_error("{} failed authentication (different cluster secret?)", to.str());
  }

  std::string header_bytes = header.dump();
  OSMO_TRY(write_frame(fd, tag_of(key, transcript("osmo-peer-client", client, server, my_name,
                                                   server_name, header_bytes))));
  OSMO_TRY(write_frame(fd, header_bytes));
  OSMO_ASSIGN_OR_RETURN(std::string verdict, read_frame(fd, 4096));
  if (verdict.empty()) return make_error("{}: empty verdict", to.str());
  if (verdict[0] != static_cast<char>(kAccepted)) {
    failure = verdict[0] == static_cast<char>(kRefusedService) ? DialFailure::kRefused
                                                                : DialFailure::kNotAuthenticated;
    return make_error("{} ({}) refused: {}", server_name, to.str(), verdict.substr(1));
  }
  set_io_timeout(fd, 0);
  return conn;
}

}  // namespace osmo::daemon
