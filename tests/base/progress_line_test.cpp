// SPDX-License-Identifier: GPL-2.0-or-later
// The progress line: what a frame says, that it fits the terminal, and that a disabled line
// writes nothing at all (a pipe or a log file never gets carriage returns).
#include "base/progress_line.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

namespace osmo {
namespace {

std::string drain(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

TEST(ProgressLine, FrameSaysPhaseBytesRateAndTime) {
  EXPECT_EQ(render_progress("checkpoint pid 7", "freezing", 0, 0.0, 0), "checkpoint pid 7 · freezing · 0.0 s");
  EXPECT_EQ(render_progress("checkpoint pid 7", "writing image", 512ull << 20, 2.0, 0),
            "checkpoint pid 7 · writing image · 512.0 MiB · 256.0 MiB/s · 2.0 s");
  // No rate before a tenth of a second: it would be noise.
  EXPECT_EQ(render_progress("restore", "reading image", 1000, 0.05, 0), "restore · reading image · 1000 B · 0.1 s");
}

TEST(ProgressLine, FrameIsCutToTheTerminalInColumnsNotBytes) {
  const std::string full = render_progress("migrate job 1a2b", "copying", 3ull << 30, 3.0, 0);
  const std::string cut = render_progress("migrate job 1a2b", "copying", 3ull << 30, 3.0, 20);
  EXPECT_EQ(cut, "migrate job 1a2b · c");  // "·" is two bytes and one column
  EXPECT_EQ(full.rfind(cut, 0), 0u);
}

TEST(ProgressLine, DisabledWritesNothing) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK), 0);
  {
    ProgressLine line("checkpoint pid 7", false, p[1]);
    line.phase("freezing");
    line.bytes(1 << 20);
    line.tick();
  }
  ::close(p[1]);
  EXPECT_EQ(drain(p[0]), "");
  ::close(p[0]);
}

TEST(ProgressLine, EnabledRedrawsInPlaceAndErasesAtTheEnd) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK), 0);
  {
    ProgressLine line("restore", true, p[1]);
    line.phase("reading image");
    for (int i = 0; i < 1000; i++) line.bytes(static_cast<std::uint64_t>(i) << 10);  // throttled
    line.phase("building processes");
  }
  ::close(p[1]);
  const std::string out = drain(p[0]);
  ::close(p[0]);
  EXPECT_EQ(out.rfind("\r", 0), 0u) << "every frame starts at column 0";
  EXPECT_NE(out.find("restore · reading image"), std::string::npos);
  EXPECT_NE(out.find("restore · building processes"), std::string::npos);
  EXPECT_EQ(out.find('\n'), std::string::npos) << "never a new line: the line is redrawn in place";
  EXPECT_LT(std::count(out.begin(), out.end(), '\r'), 20) << "bytes redraw at most every 100 ms";
  EXPECT_EQ(out.substr(out.size() - 4), "\r\033[K") << "erased when the command ends";
}

TEST(ProgressLine, TickerShowsTimePassingAndStopsAtOnce) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK), 0);
  {
    ProgressLine line("migrate job 1a2b", true, p[1]);
    line.phase("moving to n3");
    const auto t0 = std::chrono::steady_clock::now();
    {
      ProgressTicker ticker(line);
      ::usleep(350'000);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << "the ticker stops when asked";
  }
  ::close(p[1]);
  const std::string out = drain(p[0]);
  ::close(p[0]);
  EXPECT_GE(std::count(out.begin(), out.end(), '\r'), 3) << out;
}

}  // namespace
}  // namespace osmo
