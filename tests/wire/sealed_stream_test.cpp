// SPDX-License-Identifier: GPL-2.0-or-later
// Sealed streams: what goes in comes out, and any damage, forgery, reordering, replay, reflection
// or truncation is refused before a byte of the damaged chunk is used.
#include "wire/sealed_stream.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "base/unique_fd.hpp"

namespace osmo::wire {
namespace {

Key test_key(std::uint8_t b) {
  Key k;
  k.fill(b);
  return k;
}

struct Pair {
  UniqueFd a, b;
  Pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a.reset(sv[0]);
    b.reset(sv[1]);
  }
};

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& x : v) x = static_cast<std::uint8_t>(g());
  return v;
}

// Seals `chunks` into a buffer (through a socketpair drained by a thread) and returns the bytes.
std::vector<std::uint8_t> sealed_bytes(const Key& key, SealSuite suite,
                                       const std::vector<std::vector<std::uint8_t>>& chunks) {
  Pair p;
  std::vector<std::uint8_t> out;
  std::thread reader([&] {
    std::uint8_t buf[65536];
    for (;;) {
      ssize_t n = ::read(p.b.get(), buf, sizeof buf);
      if (n <= 0) break;
      out.insert(out.end(), buf, buf + n);
    }
  });
  ChunkSealer s(key, suite, Direction::kInitiatorToResponder);
  for (const auto& c : chunks) EXPECT_TRUE(s.write(p.a.get(), ChunkType::kData, c).ok());
  EXPECT_TRUE(s.write(p.a.get(), ChunkType::kEnd, {}).ok());
  p.a.reset();
  reader.join();
  return out;
}

// Feeds `bytes` to an opener and returns the first error, or "" after a complete stream.
std::string open_all(const Key& key, SealSuite suite, const std::vector<std::uint8_t>& bytes,
                     Direction dir = Direction::kInitiatorToResponder,
                     std::vector<std::uint8_t>* data = nullptr) {
  Pair p;
  std::thread writer([&] {
    std::size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(p.a.get(), bytes.data() + off, bytes.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    p.a.reset();
  });
  ChunkOpener o(key, suite, dir);
  Chunk c;
  std::string err;
  for (;;) {
    Status s = o.read(p.b.get(), &c);
    if (!s.ok()) {
      err = s.error().message;
      break;
    }
    if (c.type == ChunkType::kEnd) break;
    if (data != nullptr) data->insert(data->end(), c.payload.begin(), c.payload.end());
  }
  p.b.reset();
  writer.join();
  return err;
}

class SealedStream : public ::testing::TestWithParam<SealSuite> {
 protected:
  void SetUp() override {
    if (GetParam() == SealSuite::kAes256Gcm && local_seal_suite() != SealSuite::kAes256Gcm)
      GTEST_SKIP() << "this CPU has no AES-NI: AES-256-GCM is never chosen here";
  }
};

TEST_P(SealedStream, RoundTripsChunksOfEverySize) {
  const Key k = test_key(7);
  std::vector<std::vector<std::uint8_t>> chunks;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, std::size_t{kMaxChunkPayload}})
    chunks.push_back(random_bytes(n, static_cast<std::uint32_t>(n)));
  auto bytes = sealed_bytes(k, GetParam(), chunks);
  std::vector<std::uint8_t> data;
  EXPECT_EQ(open_all(k, GetParam(), bytes, Direction::kInitiatorToResponder, &data), "");
  std::vector<std::uint8_t> want;
  for (const auto& c : chunks) want.insert(want.end(), c.begin(), c.end());
  EXPECT_EQ(data, want);
}

TEST_P(SealedStream, EveryFlippedByteIsRefused) {
  const Key k = test_key(9);
  auto bytes = sealed_bytes(k, GetParam(), {random_bytes(300, 1), random_bytes(50, 2)});
  // Every byte of the stream, header, payload and tag alike, is covered.
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto bad = bytes;
    bad[i] ^= 0x20;
    EXPECT_NE(open_all(k, GetParam(), bad), "") << "flipped byte " << i << " was accepted";
  }
}

TEST_P(SealedStream, WrongKeyReflectionTruncationAndReorderAreRefused) {
  const Key k = test_key(3);
  auto a = random_bytes(100, 5), b = random_bytes(100, 6);
  auto bytes = sealed_bytes(k, GetParam(), {a, b});
  EXPECT_NE(open_all(test_key(4), GetParam(), bytes), "");                       // another key
  EXPECT_NE(open_all(k, GetParam(), bytes, Direction::kResponderToInitiator), "");  // reflected
  const std::size_t chunk = kChunkHeaderBytes + 100 + kChunkTagBytes;
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, chunk, chunk + 9, 2 * chunk})
    EXPECT_NE(open_all(k, GetParam(), std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(cut))), "")
        << "truncated at " << cut;
  // The two data chunks swapped, and the first one replayed in place of the second.
  std::vector<std::uint8_t> swapped(bytes.begin() + static_cast<long>(chunk), bytes.begin() + static_cast<long>(2 * chunk));
  swapped.insert(swapped.end(), bytes.begin(), bytes.begin() + static_cast<long>(chunk));
  swapped.insert(swapped.end(), bytes.begin() + static_cast<long>(2 * chunk), bytes.end());
  EXPECT_NE(open_all(k, GetParam(), swapped), "");
  std::vector<std::uint8_t> replay(bytes.begin(), bytes.begin() + static_cast<long>(chunk));
  replay.insert(replay.end(), bytes.begin(), bytes.end());
  EXPECT_NE(open_all(k, GetParam(), replay), "");
}

// The fault point used by the migration tests damages exactly the chosen data chunk.
TEST_P(SealedStream, DamagedChunkFaultIsCaughtAtThatChunk) {
  const Key k = test_key(5);
  Pair p;
  std::vector<std::uint8_t> out;
  std::thread reader([&] {
    std::uint8_t buf[65536];
    for (ssize_t n; (n = ::read(p.b.get(), buf, sizeof buf)) > 0;) out.insert(out.end(), buf, buf + n);
  });
  ChunkSealer s(k, GetParam(), Direction::kInitiatorToResponder);
  s.damage_data_chunk(2);
  ASSERT_TRUE(s.write_message(p.a.get(), "hello").ok());  // messages do not count
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.write(p.a.get(), ChunkType::kData, random_bytes(1000, static_cast<std::uint32_t>(i))).ok());
  p.a.reset();
  reader.join();
  Pair q;
  std::thread writer([&] {
    (void)!::write(q.a.get(), out.data(), out.size());
    q.a.reset();
  });
  ChunkOpener o(k, GetParam(), Direction::kInitiatorToResponder);
  Chunk c;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(o.read(q.b.get(), &c).ok()) << "chunk " << i;
  Status bad = o.read(q.b.get(), &c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("chunk 3 failed authentication"), std::string::npos) << bad.error().message;
  EXPECT_EQ(o.refused(), 1u);
  q.b.reset();
  writer.join();
}

TEST_P(SealedStream, OversizedHeaderRefusedWithoutReadingIt) {
  std::vector<std::uint8_t> bytes(kChunkHeaderBytes, 0);
  bytes[3] = 0x7f;  // 2 GiB
  EXPECT_NE(open_all(test_key(1), GetParam(), bytes).find("announces"), std::string::npos);
}

TEST_P(SealedStream, PumpsCarryAPipeAcrossAndStopAtTheEnd) {
  const Key cluster = test_key(11);
  const SessionId sid = random_session_id();
  const Key k = derive_session_key(cluster, "test", GetParam(), sid);
  EXPECT_NE(k, derive_session_key(cluster, "test", GetParam(), random_session_id()));
  EXPECT_NE(k, derive_session_key(cluster, "other", GetParam(), sid));
  int in[2], out[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  UniqueFd in_r(in[0]), in_w(in[1]), out_r(out[0]), out_w(out[1]);
  Pair p;
  const auto data = random_bytes(3u << 20, 42);
  std::thread producer([&] {
    std::size_t off = 0;
    while (off < data.size()) off += static_cast<std::size_t>(::write(in_w.get(), data.data() + off, std::min<std::size_t>(100000, data.size() - off)));
    in_w.reset();
  });
  std::vector<std::uint8_t> got;
  std::thread consumer([&] {
    std::uint8_t buf[65536];
    for (;;) {
      ssize_t n = ::read(out_r.get(), buf, sizeof buf);
      if (n <= 0) break;
      got.insert(got.end(), buf, buf + n);
    }
  });
  ChunkSealer sealer(k, GetParam(), Direction::kInitiatorToResponder);
  ChunkOpener opener(k, GetParam(), Direction::kInitiatorToResponder);
  std::uint64_t sent = 0, received = 0;
  std::thread seal([&] { EXPECT_TRUE(seal_pump(in_r.get(), p.a.get(), sealer, &sent).ok()); });
  Status opened = open_pump(p.b.get(), out_w.get(), opener, &received);
  seal.join();
  producer.join();
  // A message after the end of the byte stream is the caller's, not the pump's.
  ASSERT_TRUE(sealer.write_message(p.a.get(), "{\"after\":1}").ok());
  Chunk m;
  ASSERT_TRUE(opener.read(p.b.get(), &m).ok());
  EXPECT_EQ(m.type, ChunkType::kMessage);
  EXPECT_EQ(std::string(m.payload.begin(), m.payload.end()), "{\"after\":1}");
  out_w.reset();
  consumer.join();
  ASSERT_TRUE(opened.ok()) << opened.error().str();
  EXPECT_EQ(sent, data.size());
  EXPECT_EQ(received, data.size());
  EXPECT_EQ(got, data);
}

// The zero-copy path a migration's image takes: pieces of any size written without copying,
// read back in reads of any size (straight into the caller's memory when a chunk fits), the
// byte stream's end seen as a short read, and the next message after it intact.
TEST_P(SealedStream, DataPiecesReadBackInAnyCutAndEndShort) {
  const Key k = test_key(21);
  const auto data = random_bytes((5u << 20) + 12345, 9);
  Pair p;
  std::thread sender([&] {
    ChunkSealer s(k, GetParam(), Direction::kInitiatorToResponder);
    // Pieces: a small header-like one, one larger than a chunk, many small ones, the rest.
    std::vector<iovec> iov;
    std::size_t off = 0;
    auto piece = [&](std::size_t n) {
      iov.push_back({const_cast<std::uint8_t*>(data.data()) + off, n});
      off += n;
    };
    piece(40);
    piece(kMaxChunkPayload * 2 + 100);
    for (int i = 0; i < 300; ++i) piece(4096);
    piece(data.size() - off);
    EXPECT_TRUE(s.write_data(p.a.get(), iov.data(), iov.size()).ok());
    EXPECT_TRUE(s.write(p.a.get(), ChunkType::kEnd, {}).ok());
    EXPECT_TRUE(s.write_message(p.a.get(), "after").ok());
  });
  ChunkOpener o(k, GetParam(), Direction::kInitiatorToResponder);
  std::vector<std::uint8_t> got(data.size() + 100);
  std::size_t off = 0;
  std::mt19937 g(3);
  for (;;) {
    const std::size_t want = 1 + g() % (3u << 20);
    auto r = o.read_data(p.b.get(), got.data() + off, std::min(want, got.size() - off));
    ASSERT_TRUE(r.ok()) << r.error().str();
    off += *r;
    if (o.data_ended()) break;
    ASSERT_LT(off, got.size());
  }
  EXPECT_EQ(off, data.size());
  got.resize(off);
  EXPECT_EQ(got, data);
  Chunk m;
  ASSERT_TRUE(o.read(p.b.get(), &m).ok());
  EXPECT_EQ(m.type, ChunkType::kMessage);
  EXPECT_EQ(std::string(m.payload.begin(), m.payload.end()), "after");
  sender.join();
}

// A damaged chunk on the zero-copy path is refused at that chunk, and nothing after it is read.
TEST_P(SealedStream, DataPathRefusesTheDamagedChunk) {
  const Key k = test_key(22);
  const auto data = random_bytes(3u << 20, 10);
  Pair p;
  std::thread sender([&] {
    ChunkSealer s(k, GetParam(), Direction::kInitiatorToResponder);
    s.damage_data_chunk(2);
    iovec v{const_cast<std::uint8_t*>(data.data()), data.size()};
    (void)s.write_data(p.a.get(), &v, 1);
    (void)s.write(p.a.get(), ChunkType::kEnd, {});
    p.a.reset();
  });
  ChunkOpener o(k, GetParam(), Direction::kInitiatorToResponder);
  std::vector<std::uint8_t> got(data.size());
  auto r = o.read_data(p.b.get(), got.data(), got.size());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("chunk 2 failed authentication"), std::string::npos) << r.error().message;
  EXPECT_EQ(o.refused(), 1u);
  EXPECT_FALSE(o.read_data(p.b.get(), got.data(), 1).ok());  // dead after the first refusal
  p.b.reset();
  sender.join();
}

INSTANTIATE_TEST_SUITE_P(Suites, SealedStream,
                         ::testing::Values(SealSuite::kAes256Gcm, SealSuite::kChaCha20Poly1305),
                         [](const ::testing::TestParamInfo<SealSuite>& p) { return std::string(seal_suite_name(p.param)); });

}  // namespace
}  // namespace osmo::wire
