// SPDX-License-Identifier: GPL-2.0-or-later
// The control socket: JSON lines both ways, errors as {"ok": false}, fds passed both ways,
// malformed requests answered without harm, a stale socket file replaced, a live one kept; a
// nesting of 100,000 and a trickled request refused.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>

#include "daemon/control_client.hpp"
#include "daemon/control_server.hpp"

namespace osmo::daemon {
namespace {

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("osmo-control-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "osmod.sock").string();
    server_.add("echo", [](const Json& req, ControlContext& ctx) -> Result<Json> {
      return Json{{"got", req.value("x", 0)}, {"uid", ctx.peer.uid}};
    });
    server_.add("fail", [](const Json&, ControlContext&) -> Result<Json> { return make_error("no such job 42"); });
    server_.add("dup", [](const Json&, ControlContext& ctx) -> Result<Json> {
      // Passes back a duplicate of the first fd the client sent.
      if (ctx.fds.empty()) return make_error("no fd");
      ctx.reply_fds.emplace_back(::dup(ctx.fds[0].get()));
      return Json::object();
    });
    ASSERT_TRUE(server_.start(path_).ok());
  }
  void TearDown() override {
    server_.stop();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::string path_;
  ControlServer server_{Logger("t", "control")};
};

TEST_F(ControlTest, RequestResponse) {
  auto c = ControlClient::connect(path_);
  ASSERT_TRUE(c.ok()) << c.error().str();
  auto r = c->call({{"op", "echo"}, {"x", 5}});
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ((*r)["got"], 5);
  EXPECT_EQ((*r)["uid"], ::getuid());
  // Several requests on one connection.
  EXPECT_EQ((*c->call({{"op", "echo"}, {"x", 6}}))["got"], 6);
}

TEST_F(ControlTest, ErrorsAndUnknownOps) {
  auto c = ControlClient::connect(path_);
  ASSERT_TRUE(c.ok());
  auto r = c->call({{"op", "fail"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().str(), "no such job 42");
  auto u = c->call({{"op", "frobnicate"}});
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().str(), "unknown operation 'frobnicate'");
  auto bad = c->call({{"no-op", 1}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().str(), "malformed control request");
  // A type error inside a handler's request does not kill the daemon.
  auto wrong = c->call({{"op", "echo"}, {"x", "not a number"}});
  EXPECT_FALSE(wrong.ok());
  EXPECT_TRUE(c->call({{"op", "echo"}, {"x", 1}}).ok());
}

TEST_F(ControlTest, GarbageLineGetsAnErrorNotACrash) {
  auto c = ControlClient::connect(path_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(send_line(c->fd(), "{{{ not json", {}).ok());
  std::string pending;
  auto line = recv_line(c->fd(), pending, nullptr, 4096);
  ASSERT_TRUE(line.ok());
  EXPECT_NE(line->find("malformed control request"), std::string::npos);
}

TEST_F(ControlTest, PassesFdsBothWays) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  auto c = ControlClient::connect(path_);
  ASSERT_TRUE(c.ok());
  std::vector<UniqueFd> got;
  int send[] = {wr.get()};
  auto r = c->call({{"op", "dup"}}, send, &got);
  ASSERT_TRUE(r.ok()) << r.error().str();
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(::write(got[0].get(), "x", 1), 1);
  char ch = 0;
  ASSERT_EQ(::read(rd.get(), &ch, 1), 1);
  EXPECT_EQ(ch, 'x');
}

TEST_F(ControlTest, LiveSocketIsNotStolen) {
  ControlServer second{Logger("t2", "control")};
  auto st = second.start(path_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().str().find("already serving"), std::string::npos);
  EXPECT_TRUE(ControlClient::connect(path_).ok());
}

TEST(ControlClient, MissingDaemonIsExplained) {
  auto c = ControlClient::connect("/nonexistent/osmod.sock");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().str().find("is `osmo daemon` running?"), std::string::npos);
}

// A local user's request nesting 100,000 arrays: refused before the parser sees it, and the
// connection still serves the next request.
TEST_F(ControlTest, ANestingOf100000IsRefusedBeforeParsing) {
  auto c = ControlClient::connect(path_);
  ASSERT_TRUE(c.ok());
  const std::string deep = R"({"op":"echo","x":)" + std::string(100'000, '[') + std::string(100'000, ']') + "}";
  ASSERT_TRUE(send_line(c->fd(), deep, {}).ok());
  std::string pending;
  auto line = recv_line(c->fd(), pending, nullptr, 1 << 20);
  ASSERT_TRUE(line.ok()) << line.error().str();
  EXPECT_NE(line->find("nests deeper than 64"), std::string::npos) << *line;
  EXPECT_EQ((*c->call({{"op", "echo"}, {"x", 9}}))["got"], 9);
}

// A request trickled a byte at a time is cut at one deadline for the whole request.
TEST_F(ControlTest, ATrickledRequestIsCutAtItsDeadline) {
  server_.set_request_deadline_ms(500);
  auto c = ControlClient::connect(path_);
  ASSERT_TRUE(c.ok());
  const std::string req = R"({"op":"echo","x":1})";
  const auto t0 = std::chrono::steady_clock::now();
  std::string pending;
  Result<std::string> line = std::string();
  for (char ch : req) {
    if (::send(c->fd(), &ch, 1, MSG_NOSIGNAL) != 1) break;
    pollfd p{c->fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      line = recv_line(c->fd(), pending, nullptr, 1 << 16);
      break;
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(line.ok());
  EXPECT_NE(line->find("not complete within 500 ms"), std::string::npos) << *line;
  EXPECT_GE(ms, 450.0);
  EXPECT_LT(ms, 1500.0);
}

}  // namespace
}  // namespace osmo::daemon
