// SPDX-License-Identifier: GPL-2.0-or-later
// Post-copy's page server and client over a socket pair, without a testbed: the "frozen
// original" is a forked child holding a memory region, the "restored process" is this process
// with the same region emptied and registered with a userfaultfd. A thread touches pages while
// they are pushed (its faults are served first); afterwards every page must be the child's. A
// source that vanishes, or a damaged chunk, ends the client with an error instead of a hang.
#include "migrate/postcopy.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "base/unique_fd.hpp"

namespace osmo::migrate {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kPages = 8192;  // 32 MiB
constexpr std::int32_t kImagePid = 42;

wire::Key key() {
  wire::Key k;
  k.fill(7);
  return k;
}

std::uint8_t expected(std::uint64_t page, std::uint64_t byte) {
  if (page % 97 == 5) return 0;  // zero pages travel without data
  return static_cast<std::uint8_t>(page * 31 + byte % 251 + 1);
}

// A region filled with the pattern, a child keeping a copy of it (until `release` closes), and
// the region emptied here and registered missing with a userfaultfd.
struct Fixture {
  std::uint8_t* mem = nullptr;
  pid_t child = -1;
  UniqueFd release;
  ckpt::LazyPages lazy;
  HeldPages held;

  bool set_up() {
    void* m = ::mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return false;
    mem = static_cast<std::uint8_t*>(m);
    for (std::uint64_t p = 0; p < kPages; ++p)
      for (std::uint64_t b = 0; b < kPage; ++b) mem[p * kPage + b] = expected(p, b);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    child = ::fork();
    if (child == 0) {
      ::close(fds[1]);
      char c;
      (void)!::read(fds[0], &c, 1);  // until the parent closes its end
      ::_exit(0);
    }
    ::close(fds[0]);
    release.reset(fds[1]);
    if (::madvise(mem, kPages * kPage, MADV_DONTNEED) != 0) return false;
    UniqueFd uffd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
    if (!uffd) return false;
    uffdio_api api{};
    api.api = UFFD_API;
    // What the restore enables in post-copy (ckpt/mem.cpp).
    api.features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
                   UFFD_FEATURE_EVENT_UNMAP;
    if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0) return false;
    uffdio_register reg{};
    reg.range = {reinterpret_cast<std::uint64_t>(mem), kPages * kPage};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(uffd.get(), UFFDIO_REGISTER, &reg) != 0) return false;
    ckpt::LazyProcess p;
    p.pid = ::getpid();
    p.image_pid = kImagePid;
    p.uffd = std::move(uffd);
    const auto base = reinterpret_cast<std::uint64_t>(mem);
    p.ranges = {{base, base + kPages * kPage}};
    // The last 64 pages are not lazy: never present at the freeze, they come as zero pages when
    // asked for.
    p.runs = {{base, kPages - 64}};
    held = HeldPages{kImagePid, child, p.runs};
    lazy.processes.push_back(std::move(p));
    return true;
  }
  ~Fixture() {
    lazy.processes.clear();
    if (mem != nullptr) ::munmap(mem, kPages * kPage);
    release.reset();
    if (child > 0) {
      int st;
      ::waitpid(child, &st, 0);
    }
  }
};

struct Pair {
  UniqueFd a, b;
  Pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a.reset(sv[0]);
    b.reset(sv[1]);
  }
};

TEST(Postcopy, EveryPageArrivesAndFaultsAreServedWhilePushing) {
  Fixture f;
  if (!f.set_up()) GTEST_SKIP() << "cannot set up a userfaultfd here (needs root): " << std::strerror(errno);
  Pair p;
  const auto suite = wire::SealSuite::kChaCha20Poly1305;
  wire::ChunkSealer src_out(key(), suite, wire::Direction::kInitiatorToResponder);
  wire::ChunkOpener src_in(key(), suite, wire::Direction::kResponderToInitiator);
  wire::ChunkSealer tgt_out(key(), suite, wire::Direction::kResponderToInitiator);
  wire::ChunkOpener tgt_in(key(), suite, wire::Direction::kInitiatorToResponder);
  Result<nlohmann::json> served = make_error("not run"), fetched = make_error("not run");
  std::thread source([&] { served = serve_lazy_pages(p.a.get(), src_out, src_in, {f.held}, 10'000); });
  std::thread target([&] { fetched = fetch_lazy_pages(p.b.get(), tgt_out, tgt_in, f.lazy, 10'000, nullptr); });
  // The job: touches pages from the end backwards (the push goes forwards), so it faults.
  std::uint64_t bad = 0;
  for (std::uint64_t pg = kPages; pg-- > kPages - 512;) {
    const std::uint8_t want = pg >= kPages - 64 ? 0 : expected(pg, 100);
    if (f.mem[pg * kPage + 100] != want) ++bad;
  }
  source.join();
  target.join();
  ASSERT_TRUE(served.ok()) << served.error().str();
  ASSERT_TRUE(fetched.ok()) << fetched.error().str();
  EXPECT_EQ(bad, 0u);
  EXPECT_GT((*fetched)["faults"].get<std::uint64_t>(), 0u) << fetched->dump();
  EXPECT_FALSE((*fetched)["ended"].get<bool>());
  EXPECT_GT((*served)["requested"].get<std::uint64_t>(), 0u) << served->dump();
  EXPECT_GT((*served)["zero_pages"].get<std::uint64_t>(), 0u) << served->dump();
  // Unregistered now: every page is the child's (untouched pages past the lazy runs read zero).
  for (std::uint64_t pg = 0; pg < kPages; ++pg)
    for (std::uint64_t b : {0ul, 1ul, 2047ul, 4095ul}) {
      const std::uint8_t want = pg >= kPages - 64 ? 0 : expected(pg, b);
      ASSERT_EQ(f.mem[pg * kPage + b], want) << "page " << pg << " byte " << b;
    }
}

// What a job may do to its memory while pages are still missing: fork (the child must get the
// same pages), mremap (the pages must land where the memory went), MADV_DONTNEED (the memory
// must read as zeros, never as its old contents).
TEST(Postcopy, ForkRemapAndDontneedWhilePagesAreMissing) {
  Fixture f;
  if (!f.set_up()) GTEST_SKIP() << "cannot set up a userfaultfd here (needs root): " << std::strerror(errno);
  Pair p;
  const auto suite = wire::SealSuite::kChaCha20Poly1305;
  wire::ChunkSealer src_out(key(), suite, wire::Direction::kInitiatorToResponder);
  wire::ChunkOpener src_in(key(), suite, wire::Direction::kResponderToInitiator);
  wire::ChunkSealer tgt_out(key(), suite, wire::Direction::kResponderToInitiator);
  wire::ChunkOpener tgt_in(key(), suite, wire::Direction::kInitiatorToResponder);
  Result<nlohmann::json> served = make_error("not run"), fetched = make_error("not run");
  std::thread target([&] { fetched = fetch_lazy_pages(p.b.get(), tgt_out, tgt_in, f.lazy, 10'000, nullptr); });
  // Before the source starts, so that nothing has arrived yet.
  const std::uint64_t last = kPages - 64 - 256;  // 256 lazy pages near the end
  // mremap them elsewhere.
  void* to = ::mmap(nullptr, 256 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(to, MAP_FAILED);
  void* moved = ::mremap(f.mem + last * kPage, 256 * kPage, 256 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  ASSERT_EQ(moved, to) << std::strerror(errno);
  // Drop 16 pages before them.
  ASSERT_EQ(::madvise(f.mem + (last - 16) * kPage, 16 * kPage, MADV_DONTNEED), 0);
  // Fork: the child checks a page it never had. A raw clone, not fork(3): glibc's fork holds
  // every malloc lock while the kernel waits for the fork event to be read, and the thread that
  // reads it here (fetch_lazy_pages) allocates; in a real post-copy the forking job and the
  // fault thread are different processes.
  const auto child = static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (child == 0) {
    const std::uint64_t pg = 100;
    ::_exit(f.mem[pg * kPage + 7] == expected(pg, 7) ? 0 : 1);
  }
  ASSERT_GT(child, 0);
  std::thread source([&] { served = serve_lazy_pages(p.a.get(), src_out, src_in, {f.held}, 10'000); });
  const auto* m = static_cast<const std::uint8_t*>(moved);
  std::uint64_t bad = 0;
  for (std::uint64_t i = 0; i < 256; ++i) bad += m[i * kPage + 9] != expected(last + i, 9);
  for (std::uint64_t i = 0; i < 16; ++i) bad += f.mem[(last - 16 + i) * kPage + 9] != 0;
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  source.join();
  target.join();
  ASSERT_TRUE(served.ok()) << served.error().str();
  ASSERT_TRUE(fetched.ok()) << fetched.error().str();
  EXPECT_EQ(bad, 0u);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "the forked child read a wrong page (status " << st << ")";
  for (std::uint64_t i = 0; i < 256; ++i) ASSERT_EQ(m[i * kPage + 4095], expected(last + i, 4095)) << i;
  for (std::uint64_t pg = 0; pg < last - 16; ++pg) ASSERT_EQ(f.mem[pg * kPage + 1], expected(pg, 1)) << pg;
  ::munmap(moved, 256 * kPage);
}

TEST(Postcopy, AVanishedSourceEndsTheClientWithAnError) {
  Fixture f;
  if (!f.set_up()) GTEST_SKIP() << "cannot set up a userfaultfd here (needs root): " << std::strerror(errno);
  Pair p;
  const auto suite = wire::SealSuite::kChaCha20Poly1305;
  wire::ChunkSealer tgt_out(key(), suite, wire::Direction::kResponderToInitiator);
  wire::ChunkOpener tgt_in(key(), suite, wire::Direction::kInitiatorToResponder);
  std::thread gone([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    p.a.reset();  // the source dies
  });
  auto r = fetch_lazy_pages(p.b.get(), tgt_out, tgt_in, f.lazy, 10'000, nullptr);
  gone.join();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("broke"), std::string::npos) << r.error().str();
}

TEST(Postcopy, ADamagedPageChunkIsRefused) {
  Fixture f;
  if (!f.set_up()) GTEST_SKIP() << "cannot set up a userfaultfd here (needs root): " << std::strerror(errno);
  Pair p;
  const auto suite = wire::SealSuite::kChaCha20Poly1305;
  wire::ChunkSealer src_out(key(), suite, wire::Direction::kInitiatorToResponder);
  src_out.damage_data_chunk(2);
  wire::ChunkOpener src_in(key(), suite, wire::Direction::kResponderToInitiator);
  wire::ChunkSealer tgt_out(key(), suite, wire::Direction::kResponderToInitiator);
  wire::ChunkOpener tgt_in(key(), suite, wire::Direction::kInitiatorToResponder);
  Result<nlohmann::json> served = make_error("not run");
  std::thread source([&] { served = serve_lazy_pages(p.a.get(), src_out, src_in, {f.held}, 2000); });
  auto r = fetch_lazy_pages(p.b.get(), tgt_out, tgt_in, f.lazy, 10'000, nullptr);
  p.b.reset();  // the target gives up: the source's next send fails
  source.join();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().str().find("failed authentication"), std::string::npos) << r.error().str();
  EXPECT_FALSE(served.ok());
}

}  // namespace
}  // namespace osmo::migrate
