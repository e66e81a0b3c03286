// SPDX-License-Identifier: GPL-2.0-or-later
// Image codec: round trip, corruption and truncation are refused with precise errors.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>
#include <lz4.h>

#include "base/unique_fd.hpp"
#include "ckpt/checksum.hpp"
#include "ckpt/image.hpp"

namespace osmo::ckpt {
namespace {

UniqueFd memfd() { return UniqueFd(memfd_create("img", MFD_CLOEXEC)); }

std::vector<std::uint8_t> read_all(int fd) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(lseek(fd, 0, SEEK_END)));
  EXPECT_EQ(pread(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  return out;
}

// The reader maps an image in a file and streams anything else: every test that reads runs
// both ways (g_stream), and both must accept and refuse exactly the same bytes.
bool g_stream = false;

UniqueFd from_bytes(const std::vector<std::uint8_t>& b) {
  if (g_stream) {
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    EXPECT_GE(fcntl(p[1], F_SETPIPE_SZ, 1 << 20), static_cast<int>(b.size()));
    EXPECT_EQ(write(p[1], b.data(), b.size()), static_cast<ssize_t>(b.size()));
    close(p[1]);
    return UniqueFd(p[0]);
  }
  UniqueFd fd = memfd();
  EXPECT_EQ(write(fd.get(), b.data(), b.size()), static_cast<ssize_t>(b.size()));
  lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

// Runs body once on a mapped file and once on a pipe.
template <typename F>
void both_ways(F body) {
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "pipe (stream)" : "memfd (mapped)");
    g_stream = stream;
    body();
  }
  g_stream = false;
}

// header, a task section, a compressible pages section, END
std::vector<std::uint8_t> sample_image(bool compress) {
  UniqueFd fd = memfd();
  ImageWriter w(fd.get(), compress);
  EXPECT_TRUE(w.write_header().ok());
  Encoder e;
  e.u32(42);
  e.str("hello");
  e.u64(0x1122334455667788ull);
  EXPECT_TRUE(w.write_section(SectionType::kTask, e.buffer()).ok());
  std::vector<std::uint8_t> pages(3 * 4096, 0xab);
  EXPECT_TRUE(w.write_section(SectionType::kPages, {{pages.data(), 4096}, {pages.data() + 4096, 8192}}, true).ok());
  EXPECT_TRUE(w.write_end().ok());
  return read_all(fd.get());
}

Status read_whole(int fd, std::vector<std::vector<std::uint8_t>>* payloads) {
  ImageReader r(fd);
  OSMO_TRY(r.read_header());
  for (;;) {
    OSMO_ASSIGN_OR_RETURN(SectionHeader h, r.next());
    std::vector<std::uint8_t> p;
    if (h.type == SectionType::kPages) {
      // Page sections as a restore takes them: stored bytes in place when the image is mapped,
      // checked (and decoded) afterwards, on another thread in a restore.
      std::vector<std::uint8_t> buf(h.length), decoded(h.raw_length);
      OSMO_ASSIGN_OR_RETURN(UncheckedPayload u,
                            r.take_payload_unchecked(buf.data(), buf.size(), decoded.data(), decoded.size()));
      EXPECT_EQ(u.in_mapping, r.mapped());
      EXPECT_EQ(u.in_mapping, u.stored != buf.data());
      EXPECT_EQ(u.compressed, (h.flags & kSectionLz4) != 0);
      OSMO_TRY(u.check());
      EXPECT_EQ(u.data, u.compressed ? decoded.data() : u.stored);
      p.assign(u.data, u.data + u.length);
    } else {
      OSMO_TRY(r.read_payload(&p));
    }
    payloads->push_back(p);
    if (h.type == SectionType::kEnd) return ok_status();
  }
}

// An image given as bytes must be refused, the message naming the section (e.g. "section #1
// (pages)") and what is wrong with it.
void expect_refused(const std::vector<std::uint8_t>& bytes, const std::string& section, const std::string& what) {
  UniqueFd fd = from_bytes(bytes);
  std::vector<std::vector<std::uint8_t>> payloads;
  Status s = read_whole(fd.get(), &payloads);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(section), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(what), std::string::npos) << s.error().message;
}

TEST(ImageCodec, RoundTripPlainAndCompressed) {
  both_ways([&] {
    for (bool compress : {false, true}) {
      auto bytes = sample_image(compress);
      UniqueFd fd = from_bytes(bytes);
      std::vector<std::vector<std::uint8_t>> payloads;
      Status s = read_whole(fd.get(), &payloads);
      ASSERT_TRUE(s.ok()) << s.error().str();
      ASSERT_EQ(payloads.size(), 3u);
      Decoder d(payloads[0].data(), payloads[0].size(), "task");
      EXPECT_EQ(*d.u32(), 42u);
      EXPECT_EQ(*d.str(), "hello");
      EXPECT_EQ(*d.u64(), 0x1122334455667788ull);
      EXPECT_TRUE(d.finish().ok());
      EXPECT_EQ(payloads[1], std::vector<std::uint8_t>(3 * 4096, 0xab));
      if (compress) {
        EXPECT_LT(bytes.size(), 4096u) << "a 12 KiB run of one byte must compress";
      }
    }
  });
}

TEST(ImageCodec, EveryFlippedByteIsRefused) {
  both_ways([&] {
    auto good = sample_image(false);
    // Flip one byte in each region: file header, section header, payload, END.
    for (std::size_t off : {std::size_t{3}, std::size_t{20}, kImageHeaderSize + 4, kImageHeaderSize + 40,
                            good.size() - 20, good.size() - 1}) {
      auto bad = good;
      bad[off] ^= 0x40;
      UniqueFd fd = from_bytes(bad);
      std::vector<std::vector<std::uint8_t>> payloads;
      Status s = read_whole(fd.get(), &payloads);
      ASSERT_FALSE(s.ok()) << "flip at " << off << " accepted";
      const std::string& m = s.error().message;
      EXPECT_TRUE(m.find("corrupted") != std::string::npos || m.find("not an osmo image") != std::string::npos ||
                  m.find("unknown") != std::string::npos)
          << m;
    }
  });
}

TEST(ImageCodec, PayloadChecksumMismatchNamesTheSection) {
  both_ways([&] {
    auto bad = sample_image(false);
    bad[kImageHeaderSize + kSectionHeaderSize + 1] ^= 1;  // inside the task payload
    expect_refused(bad, "section #0 (task)", "checksum mismatch");
  });
}

// A compressed page section is checked, then decoded, by whoever consumes it: damage in its
// stored bytes is a checksum mismatch naming the section; stored bytes with a right checksum that
// are not LZ4 are "bad LZ4 data".
TEST(ImageCodec, CompressedPageSectionsAreCheckedThenDecoded) {
  both_ways([&] {
    auto bad = sample_image(true);
    bad[bad.size() - (kSectionHeaderSize + 16) - 2] ^= 1;  // the last bytes of the pages payload
    expect_refused(bad, "section #1 (pages)", "checksum mismatch");
  });
  UniqueFd fd = memfd();
  ImageWriter w(fd.get(), true);
  ASSERT_TRUE(w.write_header().ok());
  std::vector<std::uint8_t> junk(100, 0xff);  // an LZ4 token promising far more than is there
  ASSERT_TRUE(w.write_compressed_section(SectionType::kPages, junk.data(), junk.size(), 4096,
                                         checksum64(junk.data(), junk.size()))
                  .ok());
  ASSERT_TRUE(w.write_end().ok());
  auto bytes = read_all(fd.get());
  both_ways([&] { expect_refused(bytes, "section #0 (pages)", "bad LZ4 data"); });
}

// Compression is tried only where a sample compresses: random bytes are stored plain at once,
// text is compressed and decodes back to itself.
TEST(ImageCodec, CompressionSkipsWhatDoesNotCompress) {
  std::vector<std::uint8_t> noise(1 << 20), text(1 << 20);
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (auto& b : noise) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::uint8_t>(x);
  }
  static const char* kWords[] = {"page ", "restore ", "cluster ", "node ", "image ", "gossip\n"};
  for (std::size_t i = 0, w = 0; i < text.size(); w++)
    for (const char* c = kWords[(w * 7 + w / 3) % 6]; *c != '\0' && i < text.size(); c++) text[i++] = static_cast<std::uint8_t>(*c);
  std::vector<char> flat, out;
  EXPECT_FALSE(compress_payload({{noise.data(), noise.size()}}, noise.size(), &flat, &out));
  ASSERT_TRUE(compress_payload({{text.data(), text.size() / 2}, {text.data() + text.size() / 2, text.size() / 2}},
                               text.size(), &flat, &out));
  EXPECT_LT(out.size(), text.size() / 4);
  std::vector<char> back(text.size());
  ASSERT_EQ(LZ4_decompress_safe(out.data(), back.data(), static_cast<int>(out.size()), static_cast<int>(back.size())),
            static_cast<int>(text.size()));
  EXPECT_EQ(std::memcmp(back.data(), text.data(), text.size()), 0);
}

TEST(ImageCodec, TruncationAnywhereIsRefused) {
  both_ways([&] {
    auto good = sample_image(false);
    for (std::size_t cut = 0; cut < good.size(); cut += 7) {
      std::vector<std::uint8_t> part(good.begin(), good.begin() + static_cast<long>(cut));
      UniqueFd fd = from_bytes(part);
      std::vector<std::vector<std::uint8_t>> payloads;
      Status s = read_whole(fd.get(), &payloads);
      ASSERT_FALSE(s.ok()) << "truncated at " << cut << " accepted";
      if (cut >= kImageHeaderSize) {
        EXPECT_NE(s.error().message.find("truncated"), std::string::npos) << cut << ": " << s.error().message;
      }
    }
  });
}

TEST(ImageCodec, NotAnImageAndNewerVersion) {
  std::vector<std::uint8_t> junk(100, 'x');
  UniqueFd fd = from_bytes(junk);
  ImageReader r(fd.get());
  auto h = r.read_header();
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("bad magic"), std::string::npos);

  auto img = sample_image(false);
  std::uint32_t v = kImageVersion + 1;
  std::memcpy(img.data() + 8, &v, 4);
  std::uint64_t sum = checksum64(img.data(), 24);
  std::memcpy(img.data() + 24, &sum, 8);
  UniqueFd fd2 = from_bytes(img);
  ImageReader r2(fd2.get());
  auto h2 = r2.read_header();
  ASSERT_FALSE(h2.ok());
  EXPECT_NE(h2.error().message.find("newer"), std::string::npos) << h2.error().message;

  // A version-1 image (CRC-32C checksums) is named as too old, not as corrupted.
  v = 1;
  std::memcpy(img.data() + 8, &v, 4);
  UniqueFd fd3 = from_bytes(img);
  ImageReader r3(fd3.get());
  auto h3 = r3.read_header();
  ASSERT_FALSE(h3.ok());
  EXPECT_NE(h3.error().message.find("version 1 is older"), std::string::npos) << h3.error().message;
}

TEST(ImageCodec, DecoderRefusesShortPayloadsAndHugeCounts) {
  std::vector<std::uint8_t> b{1, 2, 3};
  Decoder d(b.data(), b.size(), "vmas");
  auto v = d.u64();
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("vmas payload too short"), std::string::npos);
  std::vector<std::uint8_t> c{0xff, 0xff, 0xff, 0x7f, 0, 0};
  Decoder d2(c.data(), c.size(), "fds");
  EXPECT_FALSE(d2.count(8).ok());
}

TEST(ImageCodec, ChecksumKnownValuesOnEveryImplementation) {
  // XXH3-64 reference values (xxHash 0.8), for both builds: an image written on a CPU with AVX2
  // must verify on one without.
  std::vector<std::uint8_t> zeros(4096, 0);
  for (const checksum_detail::Impl* impl : {&checksum_detail::kAvx2, &checksum_detail::kSse2}) {
    if (impl == &checksum_detail::kAvx2 && !__builtin_cpu_supports("avx2")) continue;
    EXPECT_EQ(impl->oneshot("", 0), 0x2d06800538d394c2ull);
    EXPECT_EQ(impl->oneshot(zeros.data(), zeros.size()), 0x93d76fe148c689baull);
    EXPECT_EQ(impl->oneshot("123456789", 9), 0x72dcb18b67a17dffull);
  }
  // Pieces give the checksum of their concatenation.
  std::vector<std::uint8_t> data(100000);
  for (std::size_t i = 0; i < data.size(); i++) data[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
  Checksum c;
  c.update(data.data(), 3);
  c.update(data.data() + 3, 40000);
  c.update(data.data() + 40003, data.size() - 40003);
  EXPECT_EQ(c.digest(), checksum64(data.data(), data.size()));
}

}  // namespace
}  // namespace osmo::ckpt
