// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>

#include "base/json_limits.hpp"
#include "daemon/control_client.hpp"
#include "platform/linux/socket.hpp"

namespace osmo::daemon {
namespace {
// Bounds: a control request is small; a local user cannot pin more threads than this.
constexpr std::size_t kMaxRequestBytes = 4 << 20;
constexpr int kMaxConnections = 512;
}  // namespace

ControlServer::~ControlServer() { stop(); }

void ControlServer::add(std::string op, ControlHandler handler) {
  std::lock_guard lk(shared_->mu);
  shared_->handlers[std::move(op)] = std::move(handler);
}

Status ControlServer::start(const std::string& path) {
  path_ = path;
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) return Error{ec.value(), fmt::format("create control socket directory {}", dir.string())};

  sockaddr_un addr;
  if (!platform::make_unix_address(path, &addr)) return make_error("control socket path too long: {}", path);

  // A socket file may be left by a crashed daemon: replace it, unless someone still answers.
  if (auto probe = ControlClient::connect(path); probe.ok())
    return make_error("another osmo daemon is already serving {}", path);
  ::unlink(path.c_str());

  listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_) return errno_error("socket(AF_UNIX)");
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return errno_error("bind control socket {}", path);
  // Any local user may connect; each operation checks the caller's SO_PEERCRED itself.
  ::chmod(path.c_str(), 0666);
  if (::listen(listen_fd_.get(), 128) != 0) return errno_error("listen on {}", path);
  acceptor_ = std::thread([this] { accept_loop(); });
  return ok_status();
}

void ControlServer::stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_) ::shutdown(listen_fd_.get(), SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  listen_fd_.reset();
  if (!path_.empty()) ::unlink(path_.c_str());
}

void ControlServer::accept_loop() {
  while (!stopping_.load()) {
    int c = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_.load()) return;
      shared_->log.warn("accept on control socket failed: {}", std::strerror(errno));
      if (errno == EMFILE || errno == ENFILE) ::usleep(50'000);
      else if (errno == EINVAL) return;  // socket shut down
      continue;
    }
    UniqueFd conn(c);
    if (shared_->active.load() >= kMaxConnections) {
      shared_->log.warn("control socket: refusing connection, {} already open", kMaxConnections);
      continue;
    }
    ++shared_->active;
    std::thread([shared = shared_, conn = std::move(conn)]() mutable {
      serve(shared, std::move(conn));
      --shared->active;
    }).detach();
  }
}

void ControlServer::serve(const std::shared_ptr<Shared>& shared, UniqueFd conn) {
  Shared& sh = *shared;
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) return;
  std::string pending;
  for (;;) {
    ControlContext ctx;
    ctx.peer = peer;
    ctx.conn_fd = conn.get();
    auto line = recv_line(conn.get(), pending, &ctx.fds, kMaxRequestBytes, sh.request_deadline_ms.load());
    if (!line.ok() && line.error().code == ETIMEDOUT) {
      sh.log.warn("control socket: uid {} pid {}: {}", peer.uid, peer.pid, line.error().str());
      (void)send_line(conn.get(), Json{{"ok", false}, {"error", line.error().str()}}.dump(), {});
      return;
    }
    if (!line.ok() || line->empty()) return;
    // Nesting is bounded before the parser sees the line (base/json_limits.hpp).
    const Status depth = check_json_depth(*line);
    Json request = depth.ok() ? Json::parse(*line, nullptr, /*allow_exceptions=*/false) : Json();
    Json response;
    if (!depth.ok()) {
      response = {{"ok", false}, {"error", "malformed control request: " + depth.error().message}};
    } else if (request.is_discarded() || !request.is_object() || !request.contains("op") ||
               !request["op"].is_string()) {
      response = {{"ok", false}, {"error", "malformed control request"}};
    } else {
      std::string op = request["op"].get<std::string>();
      ControlHandler handler;
      {
        std::lock_guard lk(sh.mu);
        if (auto it = sh.handlers.find(op); it != sh.handlers.end()) handler = it->second;
      }
      if (!handler) {
        response = {{"ok", false}, {"error", fmt::format("unknown operation '{}'", op)}};
      } else {
        Result<Json> r = [&]() -> Result<Json> {
          try {
            return handler(request, ctx);
          } catch (const std::exception& e) {  // a JSON type error in a request, for example
            return make_error("{}: {}", op, e.what());
          }
        }();
        if (r.ok()) {
          response = r.ok() && r->is_object() ? std::move(r.value()) : Json::object();
          response["ok"] = true;
        } else {
          response = {{"ok", false}, {"error", r.error().str()}};
        }
      }
    }
    ++sh.served;
    std::vector<int> raw;
    for (auto& f : ctx.reply_fds) raw.push_back(f.get());
    if (!send_line(conn.get(), response.dump(), raw).ok()) return;
    if (ctx.keep_connection && response.value("ok", false)) {
      ctx.keep_connection(std::move(conn));
      return;
    }
    // A handler that took over the connection (streaming) marks it by invalidating conn_fd.
    if (ctx.conn_fd < 0) return;
  }
}

}  // namespace osmo::daemon
