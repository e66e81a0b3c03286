// SPDX-License-Identifier: GPL-2.0-or-later
// Stand-in for `osmo daemon` in the testbed's own tests (selected with OSMO_TESTBED_DAEMON), so
// that the testbed's mechanics are tested without the real daemon. Modes:
//   fake_osmod daemon ARGS...   checks the daemon contract's arguments (secret file 0600 and
//                               >= 16 bytes, state dir), listens on --listen (TCP) and --socket
//                               (unix); answers every connection with its name and a newline;
//                               records its arguments in STATE_DIR/args; exits after 10 minutes
//                               at the latest. FAKE_OSMOD_FAIL=NAME makes node NAME refuse to
//                               start.
//   fake_osmod probe HOST:PORT  connects (2 s timeout), prints the line it receives; exit 0/1.
//   fake_osmod ping HOST        one ICMP echo to HOST (raw socket, root), waits 2 s for the reply.
//   fake_osmod spin SECONDS     a busy loop for that long.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

constexpr int kLifetimeSeconds = 600;

int fail(const std::string& msg) {
  std::fprintf(stderr, "fake_osmod: %s\n", msg.c_str());
  return 1;
}

bool split_host_port(const std::string& s, std::string* host, int* port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  *port = std::atoi(s.c_str() + colon + 1);
  return *port > 0 && *port < 65536;
}

sockaddr_in ipv4(const std::string& host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  return a;
}

int run_daemon(int argc, char** argv) {
  std::string name, listen, secret, state_dir, sock, scope;
  std::vector<std::string> joins;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--name")
      name = v;
    else if (k == "--listen")
      listen = v;
    else if (k == "--join")
      joins.push_back(v);
    else if (k == "--secret-file")
      secret = v;
    else if (k == "--state-dir")
      state_dir = v;
    else if (k == "--socket")
      sock = v;
    else if (k == "--load-scope")
      scope = v;
    else
      return fail("unknown option " + k);
  }
  if (name.empty() || listen.empty() || secret.empty() || state_dir.empty() || sock.empty() ||
      scope.empty())
    return fail("missing a required option");
  if (const char* f = std::getenv("FAKE_OSMOD_FAIL"); f != nullptr && name == f)
    return fail("refusing to start node " + name + " (FAKE_OSMOD_FAIL)");
  struct stat st {};
  if (::stat(secret.c_str(), &st) != 0 || (st.st_mode & 077) != 0 || st.st_size < 16)
    return fail("bad secret file " + secret);
  if (::stat(state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail("no state dir " + state_dir);
  {
    std::ofstream args(state_dir + "/args");
    for (int i = 1; i < argc; ++i) args << argv[i] << "\n";
  }
  std::string host;
  int port = 0;
  if (!split_host_port(listen, &host, &port)) return fail("bad --listen " + listen);
  int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = ipv4(host, port);
  if (::bind(tcp, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(tcp, 16) != 0)
    return fail("listen on " + listen + ": " + std::strerror(errno));
  int unx = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un u{};
  u.sun_family = AF_UNIX;
  std::snprintf(u.sun_path, sizeof u.sun_path, "%s", sock.c_str());
  if (::bind(unx, reinterpret_cast<sockaddr*>(&u), sizeof u) != 0 || ::listen(unx, 16) != 0)
    return fail("listen on " + sock + ": " + std::strerror(errno));
  std::printf("fake-osmod %s listening on %s and %s, %zu join address(es)\n", name.c_str(),
              listen.c_str(), sock.c_str(), joins.size());
  std::fflush(stdout);
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(kLifetimeSeconds);
  std::string reply = name + "\n";
  while (std::chrono::steady_clock::now() < end) {
    pollfd fds[2] = {{tcp, POLLIN, 0}, {unx, POLLIN, 0}};
    if (::poll(fds, 2, 1000) <= 0) continue;
    for (auto& f : fds) {
      if ((f.revents & POLLIN) == 0) continue;
      int c = ::accept4(f.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    }
  }
  return 0;
}

int run_probe(const std::string& target) {
  std::string host;
  int port = 0;
  if (!split_host_port(target, &host, &port)) return fail("bad address " + target);
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a = ipv4(host, port);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)
    return fail("connect " + target + ": " + std::strerror(errno));
  pollfd p{s, POLLOUT, 0};
  if (::poll(&p, 1, 2000) != 1) return fail("connect " + target + ": timed out");
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return fail("connect " + target + ": " + std::strerror(err));
  p = {s, POLLIN, 0};
  if (::poll(&p, 1, 2000) != 1) return fail("read from " + target + ": timed out");
  char buf[256];
  ssize_t n = ::read(s, buf, sizeof buf - 1);
  if (n <= 0) return fail("read from " + target + ": nothing");
  std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
  return 0;
}

uint16_t icmp_checksum(const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len % 2 != 0) sum += static_cast<uint32_t>(p[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

int run_ping(const std::string& host) {
  int s = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (s < 0) return fail(std::string("raw ICMP socket: ") + std::strerror(errno));
  sockaddr_in to = ipv4(host, 1);
  to.sin_port = 0;
  icmphdr req{};
  req.type = ICMP_ECHO;
  req.un.echo.id = htons(static_cast<uint16_t>(::getpid()));
  req.un.echo.sequence = htons(1);
  req.checksum = icmp_checksum(&req, sizeof req);
  if (::sendto(s, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
    return fail("ping " + host + ": " + std::strerror(errno));
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{s, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    uint8_t buf[1500];
    sockaddr_in from{};
    socklen_t flen = sizeof from;
    ssize_t n = ::recvfrom(s, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n < static_cast<ssize_t>(sizeof(iphdr))) continue;
    size_t ihl = static_cast<size_t>(reinterpret_cast<iphdr*>(buf)->ihl) * 4;
    if (n < static_cast<ssize_t>(ihl + sizeof(icmphdr))) continue;
    const auto* rep = reinterpret_cast<const icmphdr*>(buf + ihl);
    if (rep->type == ICMP_ECHOREPLY && rep->un.echo.id == req.un.echo.id &&
        from.sin_addr.s_addr == to.sin_addr.s_addr) {
      std::printf("echo reply from %s\n", host.c_str());
      return 0;
    }
  }
  return fail("ping " + host + ": no echo reply within 2 s");
}

int run_spin(double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  volatile unsigned long x = 0;
  while (std::chrono::steady_clock::now() < end) x = x + 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "daemon") == 0) return run_daemon(argc, argv);
  if (argc == 3 && std::strcmp(argv[1], "probe") == 0) return run_probe(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "ping") == 0) return run_ping(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "spin") == 0) return run_spin(std::atof(argv[2]));
  return fail("usage: fake_osmod daemon ARGS... | probe HOST:PORT | ping HOST | spin SECONDS");
}
