// SPDX-License-Identifier: GPL-2.0-or-later
// The metrics registry's exposition (exact text), its refusals, concurrent updates, and the scrape
// endpoint over loopback TCP (GET /metrics, other methods and paths, a client too slow to finish
// its request).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "base/fd_io.hpp"
#include "metrics/http_endpoint.hpp"
#include "metrics/registry.hpp"

namespace osmo::metrics {
namespace {

TEST(Metrics, ExpositionText) {
  Registry r;
  auto c = r.counter("osmo_migrations_total", "Migrations, by outcome.", {{"outcome", "ok"}});
  ASSERT_TRUE(c.ok());
  (*c)->add();
  (*c)->add(2);
  (*c)->add(-5);  // counters never go down
  auto g = r.gauge("osmo_node_load", "Capacity-normalised load.");
  ASSERT_TRUE(g.ok());
  (*g)->set(0.25);
  auto h = r.histogram("osmo_migration_freeze_seconds", "Freeze time.", {0.01, 0.1, 1});
  ASSERT_TRUE(h.ok());
  for (double v : {0.005, 0.05, 0.05, 2.0}) (*h)->observe(v);
  ASSERT_TRUE(r.gauge_callback("osmo_members", "Members by state.", [] {
                 return std::vector<std::pair<Labels, double>>{{{{"state", "dead"}}, 1}, {{{"state", "alive"}}, 3}};
               }).ok());
  EXPECT_EQ(r.expose(),
            "# HELP osmo_members Members by state.\n"
            "# TYPE osmo_members gauge\n"
            "osmo_members{state=\"alive\"} 3\n"
            "osmo_members{state=\"dead\"} 1\n"
            "# HELP osmo_migration_freeze_seconds Freeze time.\n"
            "# TYPE osmo_migration_freeze_seconds histogram\n"
            "osmo_migration_freeze_seconds_bucket{le=\"0.01\"} 1\n"
            "osmo_migration_freeze_seconds_bucket{le=\"0.1\"} 3\n"
            "osmo_migration_freeze_seconds_bucket{le=\"1\"} 3\n"
            "osmo_migration_freeze_seconds_bucket{le=\"+Inf\"} 4\n"
            "osmo_migration_freeze_seconds_sum 2.105\n"
            "osmo_migration_freeze_seconds_count 4\n"
            "# HELP osmo_migrations_total Migrations, by outcome.\n"
            "# TYPE osmo_migrations_total counter\n"
            "osmo_migrations_total{outcome=\"ok\"} 3\n"
            "# HELP osmo_node_load Capacity-normalised load.\n"
            "# TYPE osmo_node_load gauge\n"
            "osmo_node_load 0.25\n");
  // The same name and labels give the same metric.
  EXPECT_EQ(*r.counter("osmo_migrations_total", "x", {{"outcome", "ok"}}), *c);
}

TEST(Metrics, RefusesWhatPrometheusWouldNot) {
  Registry r;
  EXPECT_FALSE(r.counter("osmo_migrations", "no _total").ok());
  EXPECT_FALSE(r.gauge("load", "no osmo_ prefix").ok());
  EXPECT_FALSE(r.gauge("osmo_bad-name", "dash").ok());
  EXPECT_FALSE(r.gauge("osmo_x", "bad label", {{"0abc", "v"}}).ok());
  EXPECT_FALSE(r.histogram("osmo_h", "le is reserved", {1}, {{"le", "1"}}).ok());
  ASSERT_TRUE(r.gauge("osmo_y", "a gauge").ok());
  EXPECT_FALSE(r.counter("osmo_y", "now a counter?").ok());
  EXPECT_FALSE(r.gauge_callback("osmo_y", "twice", [] { return std::vector<std::pair<Labels, double>>{}; }).ok());
  EXPECT_FALSE(r.counter_callback("osmo_sent", "no _total", [] { return std::vector<std::pair<Labels, double>>{}; }).ok());
  ASSERT_TRUE(r.counter_callback("osmo_sent_total", "kept elsewhere", [] {
                 return std::vector<std::pair<Labels, double>>{{{}, 12}};
               }).ok());
  EXPECT_NE(r.expose().find("# TYPE osmo_sent_total counter\nosmo_sent_total 12\n"), std::string::npos);
  // Label values are escaped.
  auto g = r.gauge("osmo_z", "escapes", {{"path", "a\"b\\c\nd"}});
  ASSERT_TRUE(g.ok());
  EXPECT_NE(r.expose().find("osmo_z{path=\"a\\\"b\\\\c\\nd\"} 0\n"), std::string::npos) << r.expose();
}

TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  auto* c = *r.counter("osmo_events_total", "events");
  auto* h = *r.histogram("osmo_latency_seconds", "latency", duration_buckets());
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c->add();
        h->observe(0.003);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(c->value(), 40000);
  EXPECT_EQ(h->snapshot().count, 40000u);
  EXPECT_NEAR(h->snapshot().sum, 120.0, 1e-6);
}

// A listening socket on 127.0.0.1 and its port.
UniqueFd listen_loopback(std::uint16_t* port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd.get(), 8), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

UniqueFd dial(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

std::string http(std::uint16_t port, const std::string& request) {
  UniqueFd fd = dial(port);
  EXPECT_TRUE(write_all(fd.get(), request).ok());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

TEST(MetricsEndpoint, ServesScrapesAndRefusesTheRest) {
  Registry r;
  (*r.counter("osmo_requests_total", "requests"))->add(7);
  std::uint16_t port = 0;
  auto e = HttpEndpoint::start(listen_loopback(&port), [&] { return r.expose(); });
  ASSERT_TRUE(e.ok());
  auto ok = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(ok.find("\r\n\r\n# HELP osmo_requests_total requests\n"), std::string::npos) << ok;
  EXPECT_NE(ok.find("osmo_requests_total 7\n"), std::string::npos);
  EXPECT_EQ(http(port, "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(http(port, "GET /secret HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  // A client that never finishes its request is dropped after the timeout, and the next one is
  // served.
  UniqueFd slow = dial(port);
  ASSERT_TRUE(write_all(slow.get(), std::string_view("GET /metr")).ok());
  EXPECT_EQ(http(port, "GET /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ((*e)->counters().scrapes.load(), 2u);
  EXPECT_EQ((*e)->counters().rejected.load(), 3u);  // POST, the unknown path, the slow client
}

}  // namespace
}  // namespace osmo::metrics
