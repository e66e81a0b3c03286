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

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "base/fd_io.hpp"
#include "base/json_limits.hpp"
#include "daemon/peer_pump.hpp"
#include "platform/linux/socket.hpp"
#include "wire/mac.hpp"
#include "wire/sealed_channel.hpp"

namespace osmo::daemon {
namespace {

constexpr std::uint32_t kPeerMagic = 0x504d534f;  // "OSMP" little-endian
// Version 2: ephemeral X25519 in the hellos, encrypted streams, the header's length
// authenticated before the header is read. Version 1 peers are refused (as unauthenticated).
constexpr std::uint16_t kPeerVersion = 2;
constexpr std::size_t kNonceBytes = 16;
constexpr std::size_t kMaxNameBytes = 255;
// A request header is a job spec at most (argv and environment): 1 MiB is far beyond a real one.
// Only a client that has proven the key gets to announce one (see serve()).
constexpr std::size_t kMaxHeaderBytes = 1 << 20;
// The whole handshake, from accept (or connect) to the verdict, not per read: a client that
// trickles a byte every second cannot keep a server thread longer than this.
constexpr int kHandshakeTimeoutMs = 5000;
constexpr int kMaxPeerStreams = 1024;  // concurrent streams served; more are refused
// Connections of one source address still in their handshake. Peers finish a handshake in a
// millisecond or two, so even a burst of parallel requests from one node stays far below; a
// flood from one address is closed at accept without a thread, and the other nodes still get in.
constexpr int kMaxUnauthenticatedPerSource = 64;
// Every refusal of an unauthenticated client is the same frame, sent this long after the input
// that failed was read: how a connection fails (a malformed hello, another version, a wrong tag,
// a header naming no service) tells a party without the cluster key nothing, by content or by
// timing. Long against the microseconds the checks take and the jitter of a LAN, short enough
// that a refused connection holds its thread briefly (a silent client holds one for the 5 s
// handshake deadline anyway).
constexpr int kAuthRefusalDelayMs = 250;
constexpr std::string_view kAuthRefusalText = "authentication failed";

enum Verdict : std::uint8_t { kAccepted = 0, kRefusedAuth = 1, kRefusedService = 2 };

// Hello flags (authenticated with the rest of the hello by both tags).
constexpr std::uint16_t kFlagEncrypt = 1;  // this side wants the stream encrypted
constexpr std::uint16_t kFlagAes = 2;      // this side has AES-NI (AES-256-GCM if both do)

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

Status send_all(int fd, const void* data, std::size_t n, Clock::time_point deadline) {
  // Handshake frames are small: they fit in the socket's buffer, so a send timeout of what is
  // left of the deadline bounds them.
  platform::set_send_timeout(fd, std::max(1, remaining_ms(deadline)));
  const IoResult w = write_full(fd, data, n, WriteMode::kSocket);
  if (w.error == EAGAIN) return make_error("peer stream: handshake timed out (send)");
  if (!w.ok()) return Error{w.error, "peer stream: send"};
  return ok_status();
}

// Reads exactly n bytes before `deadline` (absolute: a peer that sends one byte at a time gets
// no more time than one that sends nothing).
Status recv_exact(int fd, void* data, std::size_t n, Clock::time_point deadline) {
  auto* p = static_cast<std::uint8_t*>(data);
  std::size_t got = 0;
  while (got < n) {
    pollfd pfd{fd, POLLIN, 0};
    const int rc = ::poll(&pfd, 1, remaining_ms(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return errno_error("peer stream: poll");
    if (rc == 0) return make_error("peer stream: handshake timed out");
    const ssize_t r = ::recv(fd, p + got, n - got, MSG_DONTWAIT);
    if (r == 0) return make_error("peer stream: closed by peer during handshake");
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno_error("peer stream: receive");
    }
    got += static_cast<std::size_t>(r);
  }
  return ok_status();
}

// Little framing for handshake messages: u32 length + bytes.
Status write_frame(int fd, const std::string& bytes, Clock::time_point deadline) {
  std::uint32_t len = static_cast<std::uint32_t>(bytes.size());
  std::string out(reinterpret_cast<const char*>(&len), 4);
  out += bytes;
  return send_all(fd, out.data(), out.size(), deadline);
}

// The length is checked against max_bytes before anything is allocated.
Result<std::string> read_frame(int fd, std::size_t max_bytes, Clock::time_point deadline) {
  std::uint32_t len = 0;
  OSMO_TRY(recv_exact(fd, &len, 4, deadline));
  if (len > max_bytes) return make_error("peer stream: frame of {} bytes exceeds {}", len, max_bytes);
  std::string s(len, '\0');
  OSMO_TRY(recv_exact(fd, s.data(), len, deadline));
  return s;
}

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct Hello {
  std::uint32_t magic = kPeerMagic;
  std::uint16_t version = kPeerVersion;
  std::uint16_t flags = 0;
  std::uint8_t nonce[kNonceBytes] = {};
  std::uint8_t kx_public[crypto_kx_PUBLICKEYBYTES] = {};  // ephemeral, one per stream
};
static_assert(sizeof(Hello) == 56);

std::string encode_hello(const Hello& h, const std::string& name) {
  std::string s(reinterpret_cast<const char*>(&h), sizeof h);
  s += name;
  return s;
}

Result<std::pair<Hello, std::string>> decode_hello(const std::string& frame) {
  if (frame.size() < 8) return make_error("peer stream: short hello");
  Hello h;
  std::memcpy(&h.magic, frame.data(), 4);
  std::memcpy(&h.version, frame.data() + 4, 2);
  if (h.magic != kPeerMagic) return make_error("peer stream: bad magic");
  if (h.version != kPeerVersion)
    return make_error("peer stream: protocol version {} (we speak {})", h.version, kPeerVersion);
  if (frame.size() < sizeof(Hello)) return make_error("peer stream: short hello");
  std::memcpy(&h, frame.data(), sizeof h);
  std::string name = frame.substr(sizeof h);
  if (name.empty() || name.size() > kMaxNameBytes) return make_error("peer stream: bad node name");
  return std::make_pair(h, name);
}

// The transcript both tags cover: a role label, then both hellos as sent (magic, version, flags,
// nonce, ephemeral public key, name), length-prefixed, then `extra`. Binding the ephemeral keys
// and flags here is what stops a man in the middle from swapping keys or turning encryption off.
std::string transcript(std::string_view role, std::string_view client_hello, std::string_view server_hello,
                       std::string_view extra) {
  std::string t(role);
  for (std::string_view part : {client_hello, server_hello}) {
    const auto len = static_cast<std::uint16_t>(part.size());
    t.append(reinterpret_cast<const char*>(&len), 2);
    t += part;
  }
  t += extra;
  return t;
}

// Ephemeral X25519 key pair of one stream; wiped when the stream's keys are derived.
struct KxPair {
  std::uint8_t pk[crypto_kx_PUBLICKEYBYTES];
  std::uint8_t sk[crypto_kx_SECRETKEYBYTES];
  KxPair() { crypto_kx_keypair(pk, sk); }
  ~KxPair() { sodium_memzero(sk, sizeof sk); }
  KxPair(const KxPair&) = delete;
  KxPair& operator=(const KxPair&) = delete;
};

// The stream's two keys: each X25519 session key (crypto_kx, one per direction) mixed with a
// key derived from the cluster key and with both hellos. An eavesdropper who later steals the
// cluster key still lacks the ephemeral secrets (forward secrecy); a man in the middle who runs
// his own key exchange lacks the cluster key.
ChannelKeys stream_keys(const Key& cluster_key, bool client, const std::uint8_t rx[32], const std::uint8_t tx[32],
                        std::string_view client_hello, std::string_view server_hello, wire::SealSuite suite) {
  const Key base = wire::derive_subkey(cluster_key, "peer-stream-v2");
  auto mix = [&](std::string_view label, const std::uint8_t* kx) {
    wire::Mac m(base);
    m.update(bytes_of(label));
    m.update({kx, 32});
    m.update(bytes_of(client_hello));
    m.update(bytes_of(server_hello));
    return m.final();
  };
  ChannelKeys k;
  k.suite = suite;
  // crypto_kx: the client's tx is the server's rx (client -> server), and the other way round.
  const Key c2s = mix("client-to-server", client ? tx : rx);
  const Key s2c = mix("server-to-client", client ? rx : tx);
  k.send = client ? c2s : s2c;
  k.recv = client ? s2c : c2s;
  return k;
}

wire::SealSuite suite_of(const Hello& a, const Hello& b) {
  return (a.flags & kFlagAes) && (b.flags & kFlagAes) ? wire::SealSuite::kAes256Gcm
                                                      : wire::SealSuite::kChaCha20Poly1305;
}

std::uint16_t local_flags(bool encrypt) {
  std::uint16_t f = encrypt ? kFlagEncrypt : 0;
  if (wire::local_seal_suite() == wire::SealSuite::kAes256Gcm) f |= kFlagAes;
  return f;
}

std::string tag_of(const Key& key, std::string_view data) {
  auto tag = wire::mac(key, bytes_of(data));
  return std::string(reinterpret_cast<const char*>(tag.data()), tag.size());
}

bool tag_ok(const Key& key, std::string_view data, std::string_view tag) {
  if (tag.size() != wire::kMacBytes) return false;
  return wire::verify_mac(key, bytes_of(data), bytes_of(tag));
}

// The request header of an encrypted stream travels as channel frames (the first frames of the
// client's direction), so a job's argv and environment are never on the wire in clear.
std::string seal_header(wire::ChannelSealer& sealer, std::string_view header) {
  std::string out;
  std::vector<std::uint8_t> frame(wire::kMaxChannelFrameBytes);
  std::size_t off = 0;
  do {
    const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(header.size() - off, wire::kMaxChannelPayload));
    std::memcpy(frame.data() + wire::kChannelHeaderBytes, header.data() + off, n);
    const std::size_t len = sealer.seal(wire::ChannelFrame::kData, frame.data(), n);
    out.append(reinterpret_cast<const char*>(frame.data()), len);
    off += n;
  } while (off < header.size());
  return out;
}

Result<std::string> open_header(wire::ChannelOpener& opener, std::string sealed) {
  std::string header;
  std::size_t off = 0;
  auto* p = reinterpret_cast<std::uint8_t*>(sealed.data());
  do {
    if (sealed.size() - off < wire::kChannelHeaderBytes) return make_error("peer stream: truncated sealed header");
    std::uint32_t n = 0;
    wire::ChannelFrame type{};
    OSMO_TRY(opener.check_header(p + off, &n, &type));
    if (type != wire::ChannelFrame::kData ||
        sealed.size() - off < wire::kChannelHeaderBytes + n + wire::kChannelTagBytes)
      return make_error("peer stream: malformed sealed header");
    OSMO_TRY(opener.open(p + off, n));
    header.append(sealed, off + wire::kChannelHeaderBytes, n);
    off += wire::kChannelHeaderBytes + n + wire::kChannelTagBytes;
  } while (off < sealed.size());
  return header;
}

// Bytes on the wire of a header of n bytes: as is, or as channel frames.
std::size_t header_wire_bytes(std::size_t n, bool encrypted) {
  if (!encrypted) return n;
  const std::size_t frames = n == 0 ? 1 : (n + wire::kMaxChannelPayload - 1) / wire::kMaxChannelPayload;
  return n + frames * (wire::kChannelHeaderBytes + wire::kChannelTagBytes);
}

std::string u32_bytes(std::uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

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
  (void)pump_counters();  // the counters' shared mapping exists before the first pump's fork
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
    const env::Endpoint remote = endpoint_of(ss);
    if (shared_->active.load() >= kMaxPeerStreams) {
      ++shared_->counters.refused_busy;
      shared_->log.warn("peer port: refusing connection from {}, {} streams open", remote.str(), kMaxPeerStreams);
      continue;
    }
    // Closed at once, before any thread or byte is spent on it, when its address already has
    // kMaxUnauthenticatedPerSource handshakes under way.
    {
      std::lock_guard lk(shared_->mu);
      int& n = shared_->unauthenticated[remote.host];
      if (n >= kMaxUnauthenticatedPerSource) {
        ++shared_->counters.refused_flood;
        if (shared_->counters.refused_flood.load() % 100 == 1)
          shared_->log.warn("peer port: {} has {} handshakes under way; closing its new connections", remote.host, n);
        continue;
      }
      ++n;
    }
    ++shared_->active;
    try {
      std::thread([shared = shared_, conn = std::move(conn), remote]() mutable {
        serve(shared, std::move(conn), remote);
        --shared->active;
      }).detach();
    } catch (const std::system_error& e) {
      // No thread for it (the process's limit): the connection is closed, the daemon goes on.
      shared_->log.warn("peer port: no thread for the connection from {}: {}", remote.str(), e.what());
      --shared_->active;
      std::lock_guard lk(shared_->mu);
      if (--shared_->unauthenticated[remote.host] == 0) shared_->unauthenticated.erase(remote.host);
    }
  }
}

void PeerServer::serve(const std::shared_ptr<Shared>& shared, UniqueFd conn, env::Endpoint remote) {
  Shared& sh = *shared;
  int fd = conn.get();
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(kHandshakeTimeoutMs);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // This connection counts against its address until its handshake is over, either way.
  bool counted_unauthenticated = true;
  auto authenticated = [&] {
    if (!std::exchange(counted_unauthenticated, false)) return;
    std::lock_guard lk(sh.mu);
    if (--sh.unauthenticated[remote.host] == 0) sh.unauthenticated.erase(remote.host);
  };
  struct Release {
    decltype(authenticated)& f;
    ~Release() { f(); }
  } release{authenticated};

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
    (void)write_frame(fd, verdict, Clock::now() + std::chrono::milliseconds(kAuthRefusalDelayMs));
    (v == kRefusedService ? sh.counters.refused_service : sh.counters.refused_auth)++;
  };

  auto hello_frame = read_frame(fd, sizeof(Hello) + kMaxNameBytes, deadline);
  if (!hello_frame.ok()) return refuse(kRefusedAuth, hello_frame.error().str());
  auto hello = decode_hello(*hello_frame);
  if (!hello.ok()) return refuse(kRefusedAuth, hello.error().str());
  const auto& [client, client_name] = *hello;

  KxPair kx;
  Hello server;
  server.flags = local_flags(sh.encrypt.load());
  randombytes_buf(server.nonce, kNonceBytes);
  std::memcpy(server.kx_public, kx.pk, sizeof kx.pk);
  const std::string server_hello = encode_hello(server, sh.node_name);
  const std::string& client_hello = *hello_frame;
  // The challenge frame starts with a verdict byte too, so a refusal of the hello reads the same.
  std::string challenge = std::string(1, static_cast<char>(kAccepted)) + server_hello;
  std::string server_tag = tag_of(sh.key, transcript("osmo-peer-server-v2", client_hello, server_hello, ""));
  if (!write_frame(fd, challenge, deadline).ok() || !write_frame(fd, server_tag, deadline).ok()) return;

  // The client's tag covers the transcript and the header's length, so the server knows the
  // client holds the key before it reads (or allocates) the header: a party without the key
  // cannot make it take in more than a hello and 36 bytes.
  auto client_auth = read_frame(fd, 4 + wire::kMacBytes, deadline);
  if (!client_auth.ok()) return refuse(kRefusedAuth, client_auth.error().str());
  if (client_auth->size() != 4 + wire::kMacBytes) return refuse(kRefusedAuth, "malformed client tag");
  std::uint32_t header_len = 0;
  std::memcpy(&header_len, client_auth->data(), 4);
  if (!tag_ok(sh.key, transcript("osmo-peer-client-v2", client_hello, server_hello, client_auth->substr(0, 4)),
              client_auth->substr(4)))
    return refuse(kRefusedAuth, "bad MAC (different cluster secret?)");
  authenticated();
  if (header_len > kMaxHeaderBytes)
    return refuse(kRefusedService, fmt::format("request header of {} bytes (at most {})", header_len, kMaxHeaderBytes));

  const bool encrypted = ((client.flags | server.flags) & kFlagEncrypt) != 0;
  ChannelKeys keys;
  if (encrypted) {
    std::uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
    if (crypto_kx_server_session_keys(rx, tx, kx.pk, kx.sk, client.kx_public) != 0)
      return refuse(kRefusedService, "unusable ephemeral key");
    keys = stream_keys(sh.key, false, rx, tx, client_hello, server_hello, suite_of(client, server));
    sodium_memzero(rx, sizeof rx);
    sodium_memzero(tx, sizeof tx);
  }
  auto header_frame = read_frame(fd, header_wire_bytes(header_len, encrypted), deadline);
  if (!header_frame.ok()) return refuse(kRefusedService, header_frame.error().str());
  std::string header_bytes;
  if (encrypted) {
    wire::ChannelOpener opener(keys.recv, keys.suite);
    auto opened = open_header(opener, std::move(*header_frame));
    if (!opened.ok()) return refuse(kRefusedService, opened.error().str());
    keys.recv_seq = opener.seq();
    header_bytes = std::move(*opened);
  } else {
    // In clear the header has its own tag (encrypted, the AEAD under the stream's key covers it).
    auto header_tag = read_frame(fd, wire::kMacBytes, deadline);
    if (!header_tag.ok()) return refuse(kRefusedService, header_tag.error().str());
    if (!tag_ok(sh.key, transcript("osmo-peer-header-v2", client_hello, server_hello, *header_frame), *header_tag))
      return refuse(kRefusedService, "bad header MAC");
    header_bytes = std::move(*header_frame);
  }
  if (header_bytes.size() != header_len) return refuse(kRefusedService, "header length differs from the one announced");
  if (Status depth = check_json_depth(header_bytes); !depth.ok())
    return refuse(kRefusedService, "request header: " + depth.error().message);
  Json header = Json::parse(header_bytes, nullptr, false);
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
  if (!write_frame(fd, std::string(1, static_cast<char>(kAccepted)), deadline).ok()) return;
  platform::set_send_timeout(fd, 0);  // the service sets its own deadlines
  if (encrypted) {
    auto app = start_pump(std::move(conn), keys);
    sodium_memzero(&keys, sizeof keys);
    if (!app.ok()) {
      sh.log.warn("peer stream from {} ({}) dropped: {}", remote.str(), service, app.error().str());
      return;
    }
    conn = std::move(app).value();
    ++sh.counters.encrypted;
  }
  ++sh.counters.accepted;
  PeerContext ctx{remote, client_name};
  try {
    handler(std::move(conn), header, ctx);
  } catch (const std::exception& e) {
    sh.log.error("peer service '{}' from {} failed: {}", service, remote.str(), e.what());
  }
}

Result<UniqueFd> dial_peer(const std::string& my_name, const Key& key, const env::Endpoint& to,
                           const Json& header, int timeout_ms, DialFailure* why, bool encrypt) {
  DialFailure unused;
  DialFailure& failure = why != nullptr ? *why : unused;
  failure = DialFailure::kUnreachable;  // until the peer has answered
  // One deadline for connect and handshake together.
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
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
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  KxPair kx;
  Hello client;
  client.flags = local_flags(encrypt);
  randombytes_buf(client.nonce, kNonceBytes);
  std::memcpy(client.kx_public, kx.pk, sizeof kx.pk);
  const std::string client_hello = encode_hello(client, my_name);
  OSMO_TRY(write_frame(fd, client_hello, deadline));
  OSMO_ASSIGN_OR_RETURN(std::string challenge, read_frame(fd, 1 + sizeof(Hello) + kMaxNameBytes + 4096, deadline));
  if (challenge.empty()) return make_error("{}: empty challenge", to.str());
  if (challenge[0] != static_cast<char>(kAccepted)) {
    failure = DialFailure::kNotAuthenticated;  // the hello is refused only as unauthenticated
    return make_error("{} refused the connection: {}", to.str(), challenge.substr(1));
  }
  const std::string server_hello = challenge.substr(1);
  auto decoded = decode_hello(server_hello);
  if (!decoded.ok()) {
    failure = DialFailure::kNotAuthenticated;  // not our handshake: not a node of this cluster
    return make_error("{}: {}", to.str(), decoded.error().message);
  }
  const auto& [server, server_name] = *decoded;
  OSMO_ASSIGN_OR_RETURN(std::string server_tag, read_frame(fd, wire::kMacBytes, deadline));
  if (!tag_ok(key, transcript("osmo-peer-server-v2", client_hello, server_hello, ""), server_tag)) {
    failure = DialFailure::kNotAuthenticated;
    return make_error("{} failed authentication (different cluster secret?)", to.str());
  }

  const bool encrypted = ((client.flags | server.flags) & kFlagEncrypt) != 0;
  ChannelKeys keys;
  if (encrypted) {
    std::uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
    if (crypto_kx_client_session_keys(rx, tx, kx.pk, kx.sk, server.kx_public) != 0) {
      failure = DialFailure::kNotAuthenticated;
      return make_error("{}: unusable ephemeral key", to.str());
    }
    keys = stream_keys(key, true, rx, tx, client_hello, server_hello, suite_of(client, server));
    sodium_memzero(rx, sizeof rx);
    sodium_memzero(tx, sizeof tx);
  }
  const std::string header_bytes = header.dump();
  const std::string header_len = u32_bytes(static_cast<std::uint32_t>(header_bytes.size()));
  OSMO_TRY(write_frame(fd, header_len + tag_of(key, transcript("osmo-peer-client-v2", client_hello, server_hello, header_len)),
                       deadline));
  if (encrypted) {
    wire::ChannelSealer sealer(keys.send, keys.suite);
    OSMO_TRY(write_frame(fd, seal_header(sealer, header_bytes), deadline));
    keys.send_seq = sealer.seq();
  } else {
    OSMO_TRY(write_frame(fd, header_bytes, deadline));
    OSMO_TRY(write_frame(fd, tag_of(key, transcript("osmo-peer-header-v2", client_hello, server_hello, header_bytes)),
                         deadline));
  }
  OSMO_ASSIGN_OR_RETURN(std::string verdict, read_frame(fd, 4096, deadline));
  if (verdict.empty()) return make_error("{}: empty verdict", to.str());
  if (verdict[0] != static_cast<char>(kAccepted)) {
    failure = verdict[0] == static_cast<char>(kRefusedService) ? DialFailure::kRefused
                                                                : DialFailure::kNotAuthenticated;
    return make_error("{} ({}) refused: {}", server_name, to.str(), verdict.substr(1));
  }
  platform::set_send_timeout(fd, 0);
  if (!encrypted) return conn;
  auto app = start_pump(std::move(conn), keys);
  sodium_memzero(&keys, sizeof keys);
  return app;
}

}  // namespace osmo::daemon
