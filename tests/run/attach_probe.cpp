// SPDX-License-Identifier: GPL-2.0-or-later
// osmo-attach-probe SECRET_FILE [-- PROG ARGS]: checks the home daemon's `job.attach` routing on a
// live node (tests/run/run_testbed_test.py, case attach_routing). Run inside a testbed node (its
// OSMO_SOCKET): it starts PROG (default `sleep 30`) as `osmo run` does, keeping its control
// connection as the job's anchor registration, then dials the node's own `job.attach` like a
// shepherd that took the job over:
//   1. with a wrong token: the stream must get a `rejected` frame from the daemon;
//   2. with the right token: the daemon must pass the stream to us on the registration, with the
//      line {"attach": {"id", "epoch", "node"}}; bytes written into the dialed stream must come
//      out of the passed fd.
// Prints "ok" and exits 0, or one line saying what failed and exits 1.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/control_client.hpp"
#include "daemon/peer_link.hpp"
#include "run/frame.hpp"
#include "run/handoff_frames.hpp"
#include "run/job_spec.hpp"
#include "wire/mac.hpp"

using namespace osmo;
using nlohmann::json;

namespace {

int fail(const std::string& what) {
  std::cout << "FAIL: " << what << std::endl;
  return 1;
}

// One frame from `fd` within 10 s.
bool read_frame(int fd, run::FrameType* type, std::string* payload) {
  std::string got;
  for (;;) {
    if (got.size() >= run::kFrameHeaderBytes) {
      auto h = run::decode_header(got.data());
      if (!h.ok()) return false;
      if (got.size() >= run::kFrameHeaderBytes + h->length) {
        *type = h->type;
        *payload = got.substr(run::kFrameHeaderBytes, h->length);
        return true;
      }
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) return false;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    got.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return fail("usage: osmo-attach-probe SECRET_FILE [-- PROG ARGS]");
  std::vector<std::string> prog{"sleep", "30"};
  if (argc > 3 && std::string(argv[2]) == "--") prog.assign(argv + 3, argv + argc);
  std::ifstream in(argv[1], std::ios::binary);
  const std::vector<std::uint8_t> secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const wire::Key key = wire::derive_key(secret);
  const char* sock = std::getenv("OSMO_SOCKET");
  if (sock == nullptr) return fail("OSMO_SOCKET is not set (run inside a testbed node)");

  auto status = daemon::call_local(sock, {{"op", "status"}});
  if (!status.ok()) return fail("status: " + status.error().str());
  auto home = env::parse_endpoint(status->value("advertise", ""), 0);
  if (!home.ok()) return fail("advertise address: " + home.error().str());

  // As `osmo run` does (run_cli.cpp), at home so that the test does not depend on placement.
  auto spec = run::capture_local_spec(prog);
  if (!spec.ok()) return fail(spec.error().str());
  json req = run::to_json(*spec);
  for (const char* k : {"id", "home", "node", "uid", "gid", "groups", "state_dir", "attach_token"}) req.erase(k);
  req["op"] = "run.start";
  req["anchor"] = true;
  req["at_home"] = true;
  auto client = daemon::ControlClient::connect(sock);
  if (!client.ok()) return fail(client.error().str());
  std::vector<UniqueFd> fds;
  auto r = client->call(req, {}, &fds);
  if (!r.ok() || fds.size() != 1) return fail("run.start: " + (r.ok() ? r->dump() : r.error().str()));
  const std::string id = r->value("id", ""), token = r->value("attach_token", "");
  if (id.empty() || token.size() != 32) return fail("run.start reply without id or attach token: " + r->dump());
  UniqueFd job_stream = std::move(fds[0]);
  UniqueFd registration = client->release();
  run::FrameType type{};
  std::string payload;
  if (!read_frame(job_stream.get(), &type, &payload) || type != run::FrameType::kStarted)
    return fail("the job did not start");

  // 1. A wrong token: refused by the daemon, nothing reaches the anchor.
  {
    auto s = daemon::dial_peer("probe", key, *home,
                               {{"service", "job.attach"}, {"id", id}, {"epoch", 7}, {"token", std::string(32, '0')}},
                               5000);
    if (!s.ok()) return fail("dial job.attach: " + s.error().str());
    if (!read_frame(s->get(), &type, &payload) || type != run::FrameType::kRejected)
      return fail("an attach with a wrong token was not rejected");
    if (run::decode_message(payload).find("token is wrong") == std::string::npos)
      return fail("rejected for another reason: " + payload);
    pollfd p{registration.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) != 0) return fail("the anchor heard of an attach with a wrong token");
  }
  // 2. The right token: the stream comes out on the registration.
  auto s = daemon::dial_peer("probe", key, *home,
                             {{"service", "job.attach"}, {"id", id}, {"epoch", 7}, {"token", token}}, 5000);
  if (!s.ok()) return fail("dial job.attach: " + s.error().str());
  std::string pending;
  std::vector<UniqueFd> passed;
  auto line = daemon::recv_line(registration.get(), pending, &passed, 65536);
  if (!line.ok() || line->empty()) return fail("no line on the anchor's registration");
  const json j = json::parse(*line, nullptr, false);
  if (!j.is_object() || !j.contains("attach") || j["attach"].value("id", "") != id ||
      j["attach"].value("epoch", 0) != 7 || j["attach"].value("node", "") != "probe")
    return fail("unexpected line on the registration: " + *line);
  if (passed.size() != 1) return fail("the registration line came without the stream");
  const std::string ping = "through the home daemon, once";
  if (::write(s->get(), ping.data(), ping.size()) != static_cast<ssize_t>(ping.size())) return fail("write");
  std::string got;
  while (got.size() < ping.size()) {
    pollfd p{passed[0].get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return fail("nothing came out of the passed stream");
    char buf[256];
    const ssize_t n = ::read(passed[0].get(), buf, sizeof buf);
    if (n <= 0) return fail("the passed stream ended");
    got.append(buf, static_cast<std::size_t>(n));
  }
  if (got != ping) return fail("the passed stream carried '" + got + "'");
  std::cout << "ok" << std::endl;
  return 0;  // closing the job's stream ends it
}
