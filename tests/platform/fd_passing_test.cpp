// SPDX-License-Identifier: GPL-2.0-or-later
// SCM_RIGHTS passing (platform/linux/fd_passing) over real socketpairs: zero, one and the most
// fds per message, more than fit (the kernel closes the rest, nothing leaks), records cut by a
// small buffer and sized first, end of file, short sends on a stream, interrupted receives.
#include "platform/linux/fd_passing.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace osmo::platform {
namespace {

struct SocketPair {
  UniqueFd a, b;
  explicit SocketPair(int type) {
    int sp[2];
    EXPECT_EQ(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp), 0);
    a.reset(sp[0]);
    b.reset(sp[1]);
  }
};

struct Pipe {
  UniqueFd rd, wr;
  Pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    rd.reset(p[0]);
    wr.reset(p[1]);
  }
  // True once every copy of the write end (ours, passed ones, ones the kernel held) is closed.
  bool writers_gone() const {
    char c;
    return ::read(rd.get(), &c, 1) == 0;
  }
};

bool same_file(int x, int y) {
  struct stat sx {}, sy {};
  return ::fstat(x, &sx) == 0 && ::fstat(y, &sy) == 0 && sx.st_dev == sy.st_dev && sx.st_ino == sy.st_ino;
}

TEST(FdPassing, NoFdsIsAPlainMessage) {
  SocketPair s(SOCK_SEQPACKET);
  ASSERT_EQ(send_with_fds(s.a.get(), "hello", 5, {}), 5);
  char buf[16];
  ReceivedFds fds;
  ASSERT_EQ(recv_with_fds(s.b.get(), buf, sizeof buf, &fds), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(fds.count, 0u);
  EXPECT_FALSE(fds.truncated);
}

TEST(FdPassing, OneFdArrivesCloseOnExecAndWorks) {
  SocketPair s(SOCK_SEQPACKET);
  Pipe p;
  const int fd = p.wr.get();
  ASSERT_EQ(send_with_fds(s.a.get(), "x", 1, {&fd, 1}), 1);
  char c;
  ReceivedFds fds;
  ASSERT_EQ(recv_with_fds(s.b.get(), &c, 1, &fds), 1);
  ASSERT_EQ(fds.count, 1u);
  EXPECT_NE(fds.fds[0].get(), fd);  // a new descriptor for the same open file
  EXPECT_TRUE(same_file(fds.fds[0].get(), fd));
  EXPECT_TRUE(::fcntl(fds.fds[0].get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(::write(fds.fds[0].get(), "y", 1), 1);
  char got = 0;
  ASSERT_EQ(::read(p.rd.get(), &got, 1), 1);
  EXPECT_EQ(got, 'y');
  // Taken fds are the caller's; the others close with the ReceivedFds.
  UniqueFd taken = fds.take(0);
  EXPECT_TRUE(taken.valid());
  EXPECT_FALSE(fds.fds[0].valid());
}

TEST(FdPassing, TheMostFdsPerMessageInOrder) {
  SocketPair s(SOCK_STREAM);
  std::vector<Pipe> pipes(kMaxFdsPerMessage);
  std::vector<int> ends;
  for (auto& p : pipes) ends.push_back(p.wr.get());
  ASSERT_EQ(send_with_fds(s.a.get(), "n", 1, ends), 1);
  char c;
  ReceivedFds fds;
  ASSERT_EQ(recv_with_fds(s.b.get(), &c, 1, &fds), 1);
  ASSERT_EQ(fds.count, kMaxFdsPerMessage);
  EXPECT_FALSE(fds.truncated);
  for (std::size_t i = 0; i < kMaxFdsPerMessage; ++i) EXPECT_TRUE(same_file(fds.fds[i].get(), ends[i])) << i;

  // One more than that is refused before anything is sent.
  ends.push_back(ends.front());
  errno = 0;
  EXPECT_EQ(send_with_fds(s.a.get(), "n", 1, ends), -1);
  EXPECT_EQ(errno, EINVAL);
  ASSERT_EQ(::fcntl(s.b.get(), F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(recv_with_fds(s.b.get(), &c, 1, &fds), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(fds.count, 0u);  // a failed receive leaves no fds of an earlier message behind
}

TEST(FdPassing, MoreFdsThanFitAreClosedNotLeaked) {
  // Another sender (not our API) attaches 20 fds, all the write end of one pipe.
  SocketPair s(SOCK_SEQPACKET);
  Pipe p;
  constexpr int kSent = 20;
  int ends[kSent];
  for (int& e : ends) e = p.wr.get();
  char byte = 'm';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof ends)] = {};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  cmsghdr* cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof ends);
  std::memcpy(CMSG_DATA(cm), ends, sizeof ends);
  ASSERT_EQ(::sendmsg(s.a.get(), &mh, 0), 1);
  ASSERT_EQ(::sendmsg(s.a.get(), &mh, 0), 1);
  p.wr.reset();
  {
    char c;
    ReceivedFds fds;
    ASSERT_EQ(recv_with_fds(s.b.get(), &c, 1, &fds), 1);
    EXPECT_EQ(fds.count, kMaxFdsPerMessage);
    EXPECT_TRUE(fds.truncated);
    // The second message's fds, unwanted: the kernel closes every one of them.
    ASSERT_EQ(recv_with_fds(s.b.get(), &c, 1, nullptr), 1);
    EXPECT_FALSE(p.writers_gone());  // the 16 we hold still keep the pipe open
  }
  EXPECT_TRUE(p.writers_gone());
}

TEST(FdPassing, RecordsAreSizedFirstOrCutAndEofIsZero) {
  SocketPair s(SOCK_SEQPACKET);
  Pipe p;
  const int fd = p.wr.get();
  const std::string big(100000, 'r');
  ASSERT_EQ(send_with_fds(s.a.get(), big.data(), big.size(), {&fd, 1}), static_cast<ssize_t>(big.size()));
  ASSERT_EQ(send_with_fds(s.a.get(), "tail-of-it", 10, {}), 10);
  // The size of the next record, and it is still there afterwards.
  EXPECT_EQ(next_record_size(s.b.get()), static_cast<ssize_t>(big.size()));
  EXPECT_EQ(next_record_size(s.b.get()), static_cast<ssize_t>(big.size()));
  std::string got(big.size(), '\0');
  ReceivedFds fds;
  ASSERT_EQ(recv_with_fds(s.b.get(), got.data(), got.size(), &fds), static_cast<ssize_t>(big.size()));
  EXPECT_EQ(got, big);
  EXPECT_EQ(fds.count, 1u);
  // A buffer too small for a record cuts it; the rest of that record is gone, not the next one.
  char small[4];
  EXPECT_EQ(recv_with_fds(s.b.get(), small, sizeof small, &fds), 4);
  EXPECT_EQ(std::string(small, 4), "tail");
  EXPECT_EQ(fds.count, 0u);  // the earlier message's fd was cleared (closed) by this receive
  EXPECT_EQ(next_record_size(s.b.get(), MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  s.a.reset();
  EXPECT_EQ(next_record_size(s.b.get()), 0);
  EXPECT_EQ(recv_with_fds(s.b.get(), small, sizeof small, &fds), 0);
}

TEST(FdPassing, ShortSendOnAStreamCarriesTheFdsWithTheFirstBytes) {
  SocketPair s(SOCK_STREAM);
  ASSERT_EQ(::fcntl(s.a.get(), F_SETFL, O_NONBLOCK), 0);
  Pipe p;
  const int fd = p.wr.get();
  const std::string big(8 << 20, 's');  // more than a unix socket buffers
  const ssize_t n = send_with_fds(s.a.get(), big.data(), big.size(), {&fd, 1});
  ASSERT_GT(n, 0);
  ASSERT_LT(n, static_cast<ssize_t>(big.size()));
  char buf[4096];
  ReceivedFds fds;
  ASSERT_GT(recv_with_fds(s.b.get(), buf, sizeof buf, &fds), 0);
  EXPECT_EQ(fds.count, 1u);
  EXPECT_TRUE(same_file(fds.fds[0].get(), fd));
  // The vanished peer is an error (EPIPE), not a SIGPIPE that would end this test.
  s.b.reset();
  EXPECT_EQ(send_with_fds(s.a.get(), "z", 1, {&fd, 1}), -1);
  EXPECT_EQ(errno, EPIPE);
}

TEST(FdPassing, InterruptedReceiveIsResumed) {
  struct sigaction sa {}, old {};
  static std::atomic<int> hits{0};
  sa.sa_handler = [](int) { hits.fetch_add(1); };
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked recvmsg fails with EINTR
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  SocketPair s(SOCK_SEQPACKET);
  Pipe p;
  ssize_t n = -2;
  char buf[8] = {};
  ReceivedFds fds;
  std::thread receiver([&] { n = recv_with_fds(s.b.get(), buf, sizeof buf, &fds); });
  for (int i = 0; i < 50; ++i) {
    ::pthread_kill(receiver.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int fd = p.wr.get();
  ASSERT_EQ(send_with_fds(s.a.get(), "late", 4, {&fd, 1}), 4);
  receiver.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  EXPECT_GT(hits.load(), 0);
  EXPECT_EQ(n, 4);
  EXPECT_EQ(std::string(buf, 4), "late");
  EXPECT_EQ(fds.count, 1u);
}

}  // namespace
}  // namespace osmo::platform
