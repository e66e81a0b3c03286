// SPDX-License-Identifier: GPL-2.0-or-later
// The whole-read/whole-write loops of base/fd_io on real pipes and sockets: short transfers,
// interrupted calls (a signal handler without SA_RESTART), end of file, errors, more than
// IOV_MAX entries, and writes to a vanished peer that must not raise SIGPIPE.
#include "base/fd_io.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.hpp"

namespace osmo {
namespace {

struct Pipe {
  UniqueFd rd, wr;
  Pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    rd.reset(p[0]);
    wr.reset(p[1]);
  }
};

// Reads fd on a thread of its own, in small pieces, until end of file.
class Drain {
 public:
  explicit Drain(int fd)
      : thread_([this, fd] {
          char buf[777];
          for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            got_.append(buf, static_cast<std::size_t>(n));
          }
        }) {}
  // Once the writers are closed: everything read.
  const std::string& wait() {
    thread_.join();
    return got_;
  }

 private:
  std::string got_;
  std::thread thread_;
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// Interrupts `target` with SIGUSR1 (handled, no SA_RESTART: blocked calls fail with EINTR) every
// 200 us until stopped, and counts the signals that arrived.
class Interrupter {
 public:
  explicit Interrupter(pthread_t target) : target_(target) {
    struct sigaction sa {};
    sa.sa_handler = [](int) { hits_.fetch_add(1, std::memory_order_relaxed); };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART
    ::sigaction(SIGUSR1, &sa, &old_);
    hits_ = 0;
    thread_ = std::thread([this] {
      while (!stop_) {
        ::pthread_kill(target_, SIGUSR1);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  ~Interrupter() {
    stop();
    ::sigaction(SIGUSR1, &old_, nullptr);
  }
  // Before the target thread ends: a signal to a thread that is gone is undefined behaviour.
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  static int hits() { return hits_.load(); }

 private:
  pthread_t target_;
  struct sigaction old_ {};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  static inline std::atomic<int> hits_{0};
};

TEST(FdIo, ShortWritesAndReadsMoveEverything) {
  // 1 MiB through a 64 KiB pipe, read back in small pieces: every write is short.
  Pipe p;
  const std::string data = pattern(1 << 20);
  Drain reader(p.rd.get());
  const IoResult w = write_full(p.wr.get(), data.data(), data.size());
  p.wr.reset();
  EXPECT_TRUE(w.ok()) << std::strerror(w.error);
  EXPECT_EQ(w.bytes, data.size());
  EXPECT_EQ(reader.wait(), data);

  // And the other way: a writer that trickles bytes, a reader that wants them all at once.
  Pipe q;
  std::thread writer([&] {
    for (std::size_t i = 0; i < 64; ++i) {
      ASSERT_EQ(::write(q.wr.get(), data.data() + i * 16, 16), 16);
      if (i % 8 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::string in(1024, '\0');
  const IoResult r = read_full(q.rd.get(), in.data(), in.size());
  writer.join();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.bytes, 1024u);
  EXPECT_EQ(in, data.substr(0, 1024));
}

TEST(FdIo, InterruptedCallsAreResumed) {
  Pipe p;
  const std::string data = pattern(4 << 20);
  std::string got;
  std::atomic<bool> reader_go{false};
  std::thread reader([&] {
    while (!reader_go) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    got.resize(data.size());
    const IoResult r = read_full(p.rd.get(), got.data(), got.size());
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.bytes, data.size());
  });
  IoResult w;
  {
    // The writer blocks on a full pipe while signals keep hitting it; the reader starts late so
    // that the writer really waits.
    Interrupter hit_writer(::pthread_self());
    std::thread start([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      reader_go = true;
    });
    w = write_full(p.wr.get(), data.data(), data.size());
    start.join();
  }
  EXPECT_GT(Interrupter::hits(), 0);
  p.wr.reset();
  reader.join();
  EXPECT_TRUE(w.ok()) << std::strerror(w.error);
  EXPECT_EQ(w.bytes, data.size());
  EXPECT_EQ(got, data);

  // A reader waiting on an empty pipe, interrupted many times before the bytes come.
  Pipe q;
  IoResult r;
  char buf[8] = {};
  std::thread blocked([&] { r = read_full(q.rd.get(), buf, sizeof buf); });
  {
    Interrupter hit_reader(blocked.native_handle());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_EQ(::write(q.wr.get(), "12345678", 8), 8);
    hit_reader.stop();
    blocked.join();
  }
  EXPECT_GT(Interrupter::hits(), 0);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.bytes, 8u);
  EXPECT_EQ(std::string(buf, 8), "12345678");
}

TEST(FdIo, EndOfFileAndErrors) {
  Pipe p;
  ASSERT_EQ(::write(p.wr.get(), "abc", 3), 3);
  p.wr.reset();
  char buf[10];
  IoResult r = read_full(p.rd.get(), buf, sizeof buf);
  EXPECT_TRUE(r.ok());  // end of file is not an error: fewer bytes say it
  EXPECT_EQ(r.bytes, 3u);
  r = read_full(p.rd.get(), buf, sizeof buf);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.bytes, 0u);

  Pipe q;
  r = read_full(q.wr.get(), buf, sizeof buf);  // the write end cannot be read
  EXPECT_EQ(r.error, EBADF);
  EXPECT_EQ(r.bytes, 0u);
  const IoResult w = write_full(q.rd.get(), "x", 1);
  EXPECT_EQ(w.error, EBADF);

  EXPECT_TRUE(write_full(q.wr.get(), "", 0).ok());  // nothing to do is no error
  const Status s = write_all(q.rd.get(), "x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, EBADF);
  EXPECT_EQ(s.error().message, fmt::format("write to fd {}", q.rd.get()));
}

TEST(FdIo, SocketWritesToAVanishedPeerFailWithoutSigpipe) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd a(sp[0]);
  ::close(sp[1]);
  // SIGPIPE's default action would end this test process: kSocket must not raise it.
  const IoResult w = write_full(a.get(), "hello", 5, WriteMode::kSocket);
  EXPECT_EQ(w.error, EPIPE);
  iovec iov[2] = {{const_cast<char*>("ab"), 2}, {const_cast<char*>("cd"), 2}};
  EXPECT_EQ(writev_full(a.get(), iov, 2, WriteMode::kSocket).error, EPIPE);
}

TEST(FdIo, WritevTakesMoreThanIovMaxEntriesAndConsumesThem) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd a(sp[0]), b(sp[1]);
  const std::size_t count = IOV_MAX * 2 + 17;
  const std::string data = pattern(count * 3);
  std::vector<iovec> iov;
  for (std::size_t i = 0; i < count; ++i) {
    // Empty entries in between must be skipped, not end the loop.
    iov.push_back({const_cast<char*>(data.data() + i * 3), 3});
    if (i % 100 == 0) iov.push_back({nullptr, 0});
  }
  Drain reader(b.get());
  for (WriteMode mode : {WriteMode::kFile, WriteMode::kSocket}) {
    std::vector<iovec> v = iov;
    const IoResult w = writev_full(a.get(), v.data(), v.size(), mode);
    EXPECT_TRUE(w.ok()) << std::strerror(w.error);
    EXPECT_EQ(w.bytes, data.size());
    for (const iovec& e : v) EXPECT_EQ(e.iov_len, 0u);
  }
  a.reset();
  EXPECT_EQ(reader.wait(), data + data);
}

TEST(FdIo, ReadToEndAndItsLimit) {
  Pipe p;
  const std::string data = pattern(200000);
  std::thread writer([&] {
    (void)write_full(p.wr.get(), data.data(), data.size());
    p.wr.reset();
  });
  std::string got = "prefix:";
  const IoResult r = read_to_end(p.rd.get(), &got);
  writer.join();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.bytes, data.size());
  EXPECT_EQ(got, "prefix:" + data);

  Pipe q;
  ASSERT_EQ(::write(q.wr.get(), "0123456789", 10), 10);
  q.wr.reset();
  std::string small;
  EXPECT_EQ(read_to_end(q.rd.get(), &small, 9).error, EFBIG);
  EXPECT_EQ(small, "0123456789");  // what came is kept
}

TEST(FdIo, WaitReadable) {
  Pipe p;
  EXPECT_EQ(wait_readable(p.rd.get(), 0), 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(wait_readable(p.rd.get(), 30), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(30));
  ASSERT_EQ(::write(p.wr.get(), "x", 1), 1);
  EXPECT_EQ(wait_readable(p.rd.get(), -1), 1);
  Pipe q;
  q.wr.reset();
  EXPECT_EQ(wait_readable(q.rd.get(), 1000), 1);  // hang-up counts: the read will say EOF
  EXPECT_EQ(wait_readable(-1, 0), 0);  // poll ignores negative fds: nothing is ever readable
}

}  // namespace
}  // namespace osmo
