// SPDX-License-Identifier: GPL-2.0-or-later
// The tree section's codec (tree.cpp): a round trip, and every shape the restore could not build
// refused as corruption (a parent after its child, a pid twice, a zombie main process, a zombie
// without a parent, pid 1), before any process exists.
#include <gtest/gtest.h>

#include "ckpt/kinds.hpp"

namespace osmo::ckpt {
namespace {

TreeImage sample() {
  TreeImage t;
  t.procs = {{100, 0, 100, 100, false, 0}, {101, 100, 100, 101, false, 0}, {102, 100, 100, 101, true, 42 << 8},
             {103, 101, 100, 101, false, 0}, {200, 0, 100, 100, false, 0}};
  return t;
}

Status decode(const TreeImage& t, TreeImage* out) {
  Encoder e;
  tree_encode(t, e);
  Decoder d(e.buffer().data(), e.buffer().size(), "tree");
  return tree_decode(d, *out);
}

TEST(TreeCodec, RoundTrip) {
  TreeImage out;
  ASSERT_TRUE(decode(sample(), &out).ok());
  ASSERT_EQ(out.procs.size(), 5u);
  EXPECT_EQ(out.procs[2].pid, 102);
  EXPECT_TRUE(out.procs[2].zombie);
  EXPECT_EQ(out.procs[2].exit_status, 42 << 8);
  EXPECT_EQ(out.procs[3].ppid, 101);
  EXPECT_EQ(out.procs[4].ppid, 0);
  EXPECT_EQ(out.procs[1].pgid, 101);
}

TEST(TreeCodec, ShapesTheRestoreCannotBuildAreRefused) {
  auto refused = [](TreeImage t, const char* what) {
    TreeImage out;
    Status s = decode(t, &out);
    EXPECT_FALSE(s.ok()) << what;
    if (!s.ok()) {
      EXPECT_NE(s.error().message.find("image corrupted"), std::string::npos) << s.error().str();
    }
  };
  TreeImage t = sample();
  std::swap(t.procs[1], t.procs[3]);
  refused(t, "a child before its parent");
  t = sample();
  t.procs[4].pid = 101;
  refused(t, "a pid twice");
  t = sample();
  t.procs[0].zombie = true;
  refused(t, "a zombie main process");
  t = sample();
  t.procs[0].ppid = 7;
  refused(t, "a main process with a parent");
  t = sample();
  t.procs[4].zombie = true;
  refused(t, "a zombie without a parent in the tree");
  t = sample();
  t.procs[3].pid = 1;
  refused(t, "pid 1");
  refused(TreeImage{}, "no process");
  // Trailing bytes and a short payload.
  Encoder e;
  tree_encode(sample(), e);
  e.u8(0);
  TreeImage out;
  Decoder d(e.buffer().data(), e.buffer().size(), "tree");
  EXPECT_FALSE(tree_decode(d, out).ok()) << "trailing bytes";
  Decoder shortd(e.buffer().data(), 30, "tree");
  EXPECT_FALSE(tree_decode(shortd, out).ok()) << "short payload";
}

}  // namespace
}  // namespace osmo::ckpt
