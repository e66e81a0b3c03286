// SPDX-License-Identifier: GPL-2.0-or-later
// Socket set-up (platform/linux/socket): unix addresses that fit or not, connects to a listening
// socket, to nothing and through a path too long, and the kernel-side timeouts of a blocked read
// or write.
#include "platform/linux/socket.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace osmo::platform {
namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/osmo-socket-test-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d != nullptr ? d : "/tmp";
}

TEST(Socket, UnixAddressFitsOrNot) {
  sockaddr_un a;
  ASSERT_TRUE(make_unix_address("/run/osmo/osmod.sock", &a));
  EXPECT_EQ(a.sun_family, AF_UNIX);
  EXPECT_STREQ(a.sun_path, "/run/osmo/osmod.sock");
  const std::string longest(sizeof a.sun_path - 1, 'x');
  EXPECT_TRUE(make_unix_address(longest, &a));
  EXPECT_EQ(std::string(a.sun_path), longest);
  EXPECT_FALSE(make_unix_address(longest + "x", &a));  // no room for the terminating NUL
}

TEST(Socket, UnixConnect) {
  const std::string dir = temp_dir();
  for (int type : {SOCK_STREAM, SOCK_SEQPACKET}) {
    const std::string path = dir + (type == SOCK_STREAM ? "/stream" : "/seqpacket");
    sockaddr_un a;
    ASSERT_TRUE(make_unix_address(path, &a));
    UniqueFd l(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(l.get(), 1), 0);
    UniqueFd c = unix_connect(path, type);
    ASSERT_TRUE(c.valid()) << std::strerror(errno);
    EXPECT_TRUE(::fcntl(c.get(), F_GETFD) & FD_CLOEXEC);
    int got = 0;
    socklen_t len = sizeof got;
    ASSERT_EQ(::getsockopt(c.get(), SOL_SOCKET, SO_TYPE, &got, &len), 0);
    EXPECT_EQ(got, type);
    UniqueFd s(::accept(l.get(), nullptr, nullptr));
    ASSERT_TRUE(s.valid());
    ASSERT_EQ(::write(c.get(), "hi", 2), 2);
    char buf[2];
    ASSERT_EQ(::read(s.get(), buf, 2), 2);
    ::unlink(path.c_str());
  }
  errno = 0;
  EXPECT_FALSE(unix_connect(dir + "/nothing-here", SOCK_STREAM).valid());
  EXPECT_EQ(errno, ENOENT);
  errno = 0;
  EXPECT_FALSE(unix_connect("/" + std::string(200, 'y'), SOCK_STREAM).valid());
  EXPECT_EQ(errno, ENAMETOOLONG);
  ::rmdir(dir.c_str());
}

TEST(Socket, ReceiveAndSendTimeouts) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd a(sp[0]), b(sp[1]);
  set_receive_timeout(a.get(), 50);
  char c;
  auto t0 = std::chrono::steady_clock::now();
  errno = 0;
  EXPECT_EQ(::read(a.get(), &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(40));

  set_send_timeout(a.get(), 1200);  // 1.2 s: the milliseconds part counts too
  timeval tv{};
  socklen_t len = sizeof tv;
  ASSERT_EQ(::getsockopt(a.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, &len), 0);
  EXPECT_EQ(tv.tv_sec, 1);
  EXPECT_GE(tv.tv_usec, 199000);
  set_send_timeout(a.get(), 50);
  const std::vector<char> big(1 << 20, 'z');
  t0 = std::chrono::steady_clock::now();
  ssize_t n;
  while ((n = ::write(a.get(), big.data(), big.size())) > 0) {
  }
  EXPECT_EQ(n, -1);  // nobody reads b: the buffer fills, then the write times out
  EXPECT_EQ(errno, EAGAIN);

  set_receive_timeout(b.get(), 0);  // 0: wait forever again
  ASSERT_EQ(::getsockopt(b.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
  EXPECT_EQ(tv.tv_sec, 0);
  EXPECT_EQ(tv.tv_usec, 0);
}

}  // namespace
}  // namespace osmo::platform
