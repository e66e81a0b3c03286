// SPDX-License-Identifier: GPL-2.0-or-later
#include "env/endpoint.hpp"

#include <gtest/gtest.h>

namespace osmo::env {
namespace {

TEST(Endpoint, Parses) {
  auto a = parse_endpoint("10.7.0.2:7946", 1);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "10.7.0.2");
  EXPECT_EQ(a->port, 7946);
  auto b = parse_endpoint("node3", 7946);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->str(), "node3:7946");
  auto c = parse_endpoint("[::1]:80", 1);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->str(), "[::1]:80");
  auto d = parse_endpoint("::1", 9);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 9);
}

TEST(Endpoint, Rejects) {
  EXPECT_FALSE(parse_endpoint("", 1).ok());
  EXPECT_FALSE(parse_endpoint("a:0", 1).ok());
  EXPECT_FALSE(parse_endpoint("a:70000", 1).ok());
  EXPECT_FALSE(parse_endpoint("a:12x", 1).ok());
  EXPECT_FALSE(parse_endpoint("[::1", 1).ok());
  EXPECT_FALSE(parse_endpoint(":80", 1).ok());
}

}  // namespace
}  // namespace osmo::env
