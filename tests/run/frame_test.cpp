// SPDX-License-Identifier: GPL-2.0-or-later
// The relay frame codec: round trips, and rejection of what a broken or hostile peer could send.
#include <gtest/gtest.h>

#include "run/frame.hpp"

namespace osmo::run {
namespace {

TEST(Frame, RoundTrip) {
  std::vector<char> buf;
  append_frame(buf, FrameType::kStdout, "hello");
  append_u32_pair_frame(buf, FrameType::kExit, kExitSignal, 9);
  ASSERT_EQ(buf.size(), 2 * kFrameHeaderBytes + 5 + 8);
  auto h = decode_header(buf.data());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->type, FrameType::kStdout);
  EXPECT_EQ(h->length, 5u);
  EXPECT_EQ(std::string(buf.data() + kFrameHeaderBytes, 5), "hello");
  auto e = decode_header(buf.data() + kFrameHeaderBytes + 5);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->type, FrameType::kExit);
  EXPECT_EQ(read_u32(buf.data() + 2 * kFrameHeaderBytes + 5), kExitSignal);
  EXPECT_EQ(read_u32(buf.data() + 2 * kFrameHeaderBytes + 9), 9u);
}

TEST(Frame, WindowSizeRoundTripAndStrictLength) {
  const WindowSize ws{50, 132, 1320, 1000};
  auto p = window_size_payload(ws);
  auto back = decode_window_size(p.view());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->rows, 50);
  EXPECT_EQ(back->cols, 132);
  EXPECT_EQ(back->xpixel, 1320);
  EXPECT_EQ(back->ypixel, 1000);
  EXPECT_FALSE(decode_window_size(p.view().substr(0, 7)).ok());
  EXPECT_FALSE(decode_window_size(std::string(9, '\0')).ok());
}

TEST(Frame, RejectsUnknownTypeReservedBytesAndOversize) {
  char h[kFrameHeaderBytes];
  encode_header(h, FrameType::kStdin, 1);
  h[0] = 99;
  EXPECT_FALSE(decode_header(h).ok());
  encode_header(h, FrameType::kStdin, 1);
  h[2] = 1;
  EXPECT_FALSE(decode_header(h).ok());
  encode_header(h, FrameType::kStdin, kMaxFramePayload);
  EXPECT_TRUE(decode_header(h).ok());
  encode_header(h, FrameType::kStdin, kMaxFramePayload + 1);
  auto r = decode_header(h);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exceeds"), std::string::npos);
}

TEST(Frame, EveryTypeHasAName) {
  for (int t = 0; t < 256; ++t) {
    const auto type = static_cast<FrameType>(t);
    char h[kFrameHeaderBytes];
    encode_header(h, type, 0);
    EXPECT_EQ(decode_header(h).ok(), std::string(frame_name(type)) != "?") << t;
  }
}

}  // namespace
}  // namespace osmo::run
