// SPDX-License-Identifier: GPL-2.0-or-later
// The spread supervisor (see supervisor.hpp).
#include "spread/supervisor.hpp"

#include <linux/seccomp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "base/log.hpp"
#include "cluster_view/candidates.hpp"
#include "cluster_view/decisions.hpp"
#include "env/clock.hpp"
#include "env/random.hpp"
#include "platform/linux/fd_passing.hpp"
#include "spread/exec_request.hpp"
#include "spread/redirect.hpp"
#include "spread/stay_local.hpp"
#include "spread/supervisor_link.hpp"

namespace osmo::spread {

namespace {

using Json = nlohmann::json;

struct Watched {
  std::string id;
  std::uint64_t cookie = 0;
  UniqueFd listener;
  UniqueFd shepherd;  // the handover connection: kept open while we supervise (our end of file
                      // tells the shepherd to answer itself and offer the job again)
  // Threads whose redirect was abandoned after their exec had been interrupted: their restarted
  // exec arrives as a new notification and must stay (else the same failure could repeat).
  std::set<pid_t> stay_once;
};

class Supervisor {
 public:
  explicit Supervisor(daemon::DaemonApi& api)
      : api_(api), log_(api.node_name(), "spread"), random_(env::make_system_random()) {}

  Status start() {
    char exe[4096];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return errno_error("cannot find our own executable");
    exe_.assign(exe, static_cast<std::size_t>(n));
    if (exe_.ends_with(" (deleted)")) return make_error("our executable {} was replaced; no spreading", exe_);
    socket_ = api_.control_socket();
    if (socket_.empty()) return make_error("the daemon's control socket is unknown; no spreading");
    stay_local_ = load_stay_local_programs((api_.state_dir() / "spread-stay-local").string());
    const auto path = supervisor_socket_path(api_.state_dir());
    UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!s.valid()) return errno_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.string().size() >= sizeof addr.sun_path) return make_error("socket path {} too long", path.string());
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ::unlink(path.c_str());
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      return errno_error("bind {}", path.string());
    ::chmod(path.c_str(), 0600);
    if (::listen(s.get(), 64) != 0) return errno_error("listen {}", path.string());
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_.valid()) return errno_error("epoll_create1");
    accept_ = std::move(s);
    add_to_epoll(accept_.get());
    std::thread([this] { loop(); }).detach();  // lives as long as the daemon
    log_.info("supervising job execs (stay-local list: {} programs, home margin {})", stay_local_.size(),
              kHomeMargin);
    return ok_status();
  }

 private:
  void add_to_epoll(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  }

  void loop() {
    epoll_event evs[16];
    for (;;) {
      const int n = ::epoll_wait(epoll_.get(), evs, 16, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        log_.warn("epoll_wait: {}; spreading stops", std::strerror(errno));
        return;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = evs[i].data.fd;
        if (fd == accept_.get()) {
          take_job();
          continue;
        }
        auto it = jobs_.find(fd);
        if (it == jobs_.end()) continue;
        if ((evs[i].events & EPOLLIN) != 0) {
          on_notification(it->second);
        } else if ((evs[i].events & (EPOLLHUP | EPOLLERR)) != 0) {
          // No process of the job is left.
          log_.debug("job={} has no process left", it->second.id);
          ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
          jobs_.erase(it);
        }
      }
    }
  }

  void take_job() {
    UniqueFd conn(::accept4(accept_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) return;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) return;
    char buf[4096];
    platform::ReceivedFds fds;
    const ssize_t n = platform::recv_with_fds(conn.get(), buf, sizeof buf, &fds);
    if (n <= 0 || fds.count != 1) return;
    const Json j = Json::parse(std::string_view(buf, static_cast<std::size_t>(n)), nullptr, false);
    if (j.is_discarded() || !j.contains("id")) return;
    Watched w;
    w.id = j.value("id", "");
    w.cookie = j.value("cookie", std::uint64_t{0});
    w.listener = fds.take(0);
    const int lfd = w.listener.get();
    add_to_epoll(lfd);
    jobs_[lfd] = std::move(w);
    (void)!::write(conn.get(), "K", 1);
    jobs_[lfd].shepherd = std::move(conn);
    log_.debug("job={} supervised", j.value("id", ""));
  }

  void answer_stay(const Watched& w, const seccomp_notif& n) {
    seccomp_notif_resp r{};
    r.id = n.id;
    r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    if (::ioctl(w.listener.get(), SECCOMP_IOCTL_NOTIF_SEND, &r) != 0 && errno != ENOENT)
      log_.warn("job={} pid={} cannot answer its exec: {}", w.id, n.pid, std::strerror(errno));
  }

  // The decision's own time (from receiving the notification to answering it) is in the log
  // line: bench/spread reads it to separate it from the scheduling of the two threads.
  void stay(const Watched& w, const seccomp_notif& n, std::string_view path, std::string_view why) {
    answer_stay(w, n);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - received_).count();
    log_.debug("job={} pid={} {} stays: {} ({} us)", w.id, n.pid, path, why, us);
  }

  // How many programs placement kept here are still running (a pidfd polls readable once its
  // process has exited).
  std::size_t live_local_programs() {
    std::erase_if(local_, [](const UniqueFd& fd) {
      pollfd p{fd.get(), POLLIN, 0};
      return ::poll(&p, 1, 0) != 0;
    });
    return local_.size();
  }

  void on_notification(Watched& w) {
    seccomp_notif n{};
    if (::ioctl(w.listener.get(), SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) return;  // ENOENT: caller died
    received_ = std::chrono::steady_clock::now();
    const pid_t tid = static_cast<pid_t>(n.pid);
    if (w.stay_once.erase(tid) > 0) return stay(w, n, "(restarted exec)", "its redirect was abandoned");
    if (n.data.nr != SYS_execve) return stay(w, n, "(execveat)", "execveat/fexecve is not spread");
    auto path = read_remote_string(tid, n.data.args[0], kMaxPathBytes);
    if (!path.ok()) return stay(w, n, "?", path.error().str());
    const std::string_view name = program_name(*path);
    if (stay_local_.contains(name)) return stay(w, n, *path, "on the node's stay-local list");
    // A file that is not there (execvp and gcc try every PATH entry in turn) fails in the kernel
    // as it would anyway, before placement counts it in the ledger.
    std::string abs;
    if (auto why = file_stays(tid, *path, &abs)) return stay(w, n, *path, *why);
    // Placement, as for osmo run but with a wider home margin (supervisor.hpp), and with this
    // node's own load at least the programs placement kept here that still run: the ledger's
    // timed entries would count a loop of 1000 short programs as 1000 runnable ones, while the
    // smoothed load takes ~1 s to show a burst that really runs.
    const auto members = api_.members();
    auto candidates = cluster_view::candidates_from_view(members);
    const double live = static_cast<double>(live_local_programs());
    for (auto& c : candidates)
      if (c.is_self && c.cpus > 0) c.load = std::max(c.load, live / (c.cpus * (c.speed > 0 ? c.speed : 1.0)));
    policy::PlacementConfig cfg;
    cfg.home_margin = kHomeMargin;
    const env::TimeMs now = clock_.now_ms();
    auto p = policy::choose_node(policy::PlacementRequest{}, candidates, ledger_, now, random_, cfg);
    if (!p.ok()) return stay(w, n, *path, p.error().str());
    if (p->is_home) {
      UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, tid, 0)));
      if (pidfd.valid() && local_.size() < kMaxTrackedLocal) local_.push_back(std::move(pidfd));
      return stay(w, n, *path, "placement keeps it here");
    }
    ledger_.record(p->node, now);
    // Another node: the rules that keep it here anyway.
    if (auto why = fds_stay(tid)) return stay(w, n, *path, *why);
    auto argv_ptrs = read_remote_pointers(tid, n.data.args[1], kMaxArgs);
    if (!argv_ptrs.ok() || argv_ptrs->empty())
      return stay(w, n, *path, argv_ptrs.ok() ? "empty argv" : argv_ptrs.error().str());
    // The values read must still be the caller's request (it may have died, its memory changed).
    if (::ioctl(w.listener.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &n.id) != 0) return;
    const std::vector<std::string> deputy = {exe_,    "__spread-deputy", "--socket", socket_,
                                             "--node", p->node,          "--parent", w.id,
                                             "--path", abs,              "--cookie", std::to_string(w.cookie),
                                             "--"};
    const RedirectResult r = redirect_exec(tid, deputy, *argv_ptrs, w.cookie);
    switch (r.outcome) {
      case RedirectOutcome::kRedirected:
        log_.debug("job={} pid={} {} goes to {} (deputy here)", w.id, tid, abs, p->node);
        return;
      case RedirectOutcome::kRestarted:
        w.stay_once.insert(tid);
        log_.debug("job={} pid={} {} stays: {}", w.id, tid, abs, r.why);
        return;
      case RedirectOutcome::kNotTouched:
        return stay(w, n, *path, r.why);
    }
  }

  daemon::DaemonApi& api_;
  Logger log_;
  std::string exe_;
  std::string socket_;
  std::set<std::string, std::less<>> stay_local_;
  UniqueFd epoll_;
  UniqueFd accept_;
  std::map<int, Watched> jobs_;  // by listener fd; only the loop's thread touches it
  static constexpr std::size_t kMaxTrackedLocal = 4096;
  std::vector<UniqueFd> local_;  // pidfds of the programs placement kept here
  std::chrono::steady_clock::time_point received_;  // of the notification being decided
  policy::PlacementLedger ledger_;
  env::SeededRandom random_;
  env::SystemClock clock_;
};

}  // namespace

void install_spread_service(daemon::Services&, daemon::DaemonApi& api) {
  auto* s = new Supervisor(api);  // lives as long as the daemon process (its thread uses it)
  if (auto st = s->start(); !st.ok()) {
    Logger(api.node_name(), "spread").warn("{}", st.error().str());
    delete s;
  }
}

}  // namespace osmo::spread
