// SPDX-License-Identifier: GPL-2.0-or-later
// The terminal section's codec (terminal.cpp): a round trip of every field, an absent terminal as
// one byte, and values the restore could not apply refused as corruption before any process
// exists (a negative index, a control-character array of the wrong size, a negative foreground
// group, a mode beyond 07777, a presence byte other than 0/1, trailing bytes, a short payload).
#include <gtest/gtest.h>
#include <termios.h>

#include "ckpt/kinds.hpp"

namespace osmo::ckpt {
namespace {

ProcessImage sample() {
  ProcessImage img;
  TerminalImage& t = img.terminal;
  t.present = true;
  t.index = 7;
  t.iflag = ICRNL | IXON;
  t.oflag = OPOST | ONLCR;
  t.cflag = CS8 | CREAD;
  t.lflag = ISIG | ICANON | ECHO;
  t.line = 0;
  t.cc.assign(NCCS, 0);
  t.cc[VINTR] = 3;
  t.cc[VEOF] = 4;
  t.ispeed = B38400;
  t.ospeed = B38400;
  t.rows = 30;
  t.cols = 100;
  t.xpixel = 800;
  t.ypixel = 600;
  t.fg_pgrp = 12;
  t.exclusive = 1;
  t.uid = 1000;
  t.gid = 5;
  t.mode = 0620;
  return img;
}

std::vector<std::uint8_t> encoded(const ProcessImage& img) {
  Encoder e;
  terminal_encode(img, e);
  return e.buffer();
}

Status decode(const std::vector<std::uint8_t>& b, ProcessImage* out) {
  Decoder d(b.data(), b.size(), "terminal");
  return terminal_decode(d, *out);
}

TEST(TerminalCodec, RoundTrip) {
  ProcessImage out;
  ASSERT_TRUE(decode(encoded(sample()), &out).ok());
  const TerminalImage& t = out.terminal;
  const TerminalImage& w = sample().terminal;
  EXPECT_TRUE(t.present);
  EXPECT_EQ(t.index, 7);
  EXPECT_EQ(t.iflag, w.iflag);
  EXPECT_EQ(t.oflag, w.oflag);
  EXPECT_EQ(t.cflag, w.cflag);
  EXPECT_EQ(t.lflag, w.lflag);
  EXPECT_EQ(t.cc, w.cc);
  EXPECT_EQ(t.ispeed, w.ispeed);
  EXPECT_EQ(t.rows, 30);
  EXPECT_EQ(t.cols, 100);
  EXPECT_EQ(t.xpixel, 800);
  EXPECT_EQ(t.ypixel, 600);
  EXPECT_EQ(t.fg_pgrp, 12);
  EXPECT_EQ(t.exclusive, 1u);
  EXPECT_EQ(t.uid, 1000u);
  EXPECT_EQ(t.gid, 5u);
  EXPECT_EQ(t.mode, 0620u);
}

TEST(TerminalCodec, NoTerminalIsOneByte) {
  ProcessImage none;
  const auto b = encoded(none);
  EXPECT_EQ(b.size(), 1u);
  ProcessImage out;
  out.terminal.present = true;
  ASSERT_TRUE(decode(b, &out).ok());
  EXPECT_FALSE(out.terminal.present);
}

TEST(TerminalCodec, WhatTheRestoreCannotApplyIsRefused) {
  auto refused = [](ProcessImage img, const char* what) {
    ProcessImage out;
    EXPECT_FALSE(decode(encoded(img), &out).ok()) << what;
  };
  auto img = sample();
  img.terminal.index = -1;
  refused(img, "negative index");
  img = sample();
  img.terminal.cc.resize(NCCS - 1);
  refused(img, "short c_cc");
  img = sample();
  img.terminal.fg_pgrp = -5;
  refused(img, "negative foreground group");
  img = sample();
  img.terminal.mode = 010000;
  refused(img, "mode beyond 07777");
  ProcessImage out;
  auto b = encoded(sample());
  b.push_back(0);
  EXPECT_FALSE(decode(b, &out).ok()) << "trailing bytes";
  b = encoded(sample());
  b.resize(b.size() - 3);
  EXPECT_FALSE(decode(b, &out).ok()) << "short payload";
  b = encoded(sample());
  b[0] = 2;
  EXPECT_FALSE(decode(b, &out).ok()) << "presence byte 2";
}

}  // namespace
}  // namespace osmo::ckpt
