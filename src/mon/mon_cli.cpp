// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo mon`: a live terminal monitor of the cluster in the spirit of MOSIX's mosmon, drawn with
// ncurses. A poller thread asks the local daemon for the nodes and the jobs every interval (a
// slow or dead node never freezes the keys); the main thread draws screen.cpp's frames and reads
// keys. Without a terminal on stdout (or with --once) it prints one frame as plain text.
#include <curses.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "cli/commands.hpp"
#include "daemon/control_client.hpp"
#include "mon/model.hpp"
#include "mon/screen.hpp"

namespace osmo::cli {

namespace {

using namespace std::chrono_literals;

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What the poller shares with the screen.
struct Shared {
  std::mutex mu;
  std::condition_variable wake;
  mon::Snapshot snap;
  mon::EventLog log{200};
  std::string error;
  bool stop = false;
  std::uint64_t looks = 0;
};

// One look at the cluster: the nodes always, the jobs too (the event log needs them).
void look(const std::string& socket, Shared& sh) {
  mon::Snapshot next;
  std::string error;
  auto nodes = daemon::call_local(socket, {{"op", "nodes"}});
  if (nodes.ok()) {
    next.nodes = mon::nodes_from_json((*nodes)["nodes"]);
    auto jobs = daemon::call_local(socket, {{"op", "jobs.list"}});
    if (jobs.ok()) {
      next.jobs = mon::jobs_from_json(*jobs);
      next.have_jobs = true;
    } else {
      error = "jobs: " + jobs.error().str();
    }
  } else {
    error = nodes.error().str();
  }
  std::lock_guard lk(sh.mu);
  if (nodes.ok()) {
    sh.log.add(mon::diff(sh.snap, next, unix_ms_now()));
    sh.snap = std::move(next);
  }
  sh.error = std::move(error);
  ++sh.looks;
}

void poll_loop(const std::string& socket, std::chrono::milliseconds interval, Shared& sh) {
  for (;;) {
    look(socket, sh);
    std::unique_lock lk(sh.mu);
    if (sh.wake.wait_for(lk, interval, [&] { return sh.stop; })) return;
  }
}

void print_plain(const mon::Frame& f) {
  for (const auto& l : f.lines) {
    std::string s = mon::text_of(l);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    std::cout << s << "\n";
  }
}

short pair_of(mon::Tone t) {
  switch (t) {
    case mon::Tone::kAlive: return 1;
    case mon::Tone::kSuspect: return 2;
    case mon::Tone::kDead: case mon::Tone::kError: return 3;
    case mon::Tone::kLeft: case mon::Tone::kDim: return 4;
    case mon::Tone::kDraining: return 5;
    case mon::Tone::kBarLoad: return 6;
    case mon::Tone::kBarMem: return 7;
    default: return 0;
  }
}

void draw(const mon::Frame& f, bool colour) {
  erase();
  for (std::size_t y = 0; y < f.lines.size(); ++y) {
    move(static_cast<int>(y), 0);
    for (const auto& seg : f.lines[y]) {
      attr_t a = A_NORMAL;
      if (seg.tone == mon::Tone::kTitle || seg.tone == mon::Tone::kHeader) a |= A_BOLD;
      if (seg.tone == mon::Tone::kHeader) a |= A_REVERSE;
      if (colour && pair_of(seg.tone) != 0) a |= COLOR_PAIR(pair_of(seg.tone));
      if (!colour && (seg.tone == mon::Tone::kDead || seg.tone == mon::Tone::kSuspect || seg.tone == mon::Tone::kError))
        a |= A_BOLD;
      attron(a);
      addnstr(seg.text.c_str(), static_cast<int>(seg.text.size()));
      attroff(a);
    }
  }
  refresh();
}

// Applies a key to the screen state; false when the user quits.
bool on_key(int ch, mon::ScreenState& st, mon::View& before_help) {
  if (st.view == mon::View::kHelp && ch != ERR && ch != KEY_RESIZE) {
    st.view = before_help;  // any key leaves the help
    return ch != 'q';
  }
  switch (ch) {
    case 'q': case 'Q': return false;
    case '?': case 'h': before_help = st.view; st.view = mon::View::kHelp; break;
    case 'n': st.view = mon::View::kNodes; st.page = 0; break;
    case 'g': st.view = mon::View::kGrid; st.page = 0; break;
    case 'j': st.view = mon::View::kJobs; st.page = 0; break;
    case 's': st.sort = mon::next(st.sort); break;
    case 'r': st.reverse = !st.reverse; break;
    case KEY_NPAGE: case ' ': ++st.page; break;
    case KEY_PPAGE: case 'b': st.page = std::max(0, st.page - 1); break;
    default: break;
  }
  return true;
}

int run_monitor(const std::string& socket, double interval_s, bool once) {
  Shared sh;
  const auto interval = std::chrono::milliseconds(static_cast<std::int64_t>(interval_s * 1000));
  if (once || !::isatty(STDOUT_FILENO) || !::isatty(STDIN_FILENO)) {
    look(socket, sh);
    if (!sh.error.empty() && sh.snap.nodes.empty()) {
      std::cerr << "osmo mon: " << sh.error << "\n";
      return 1;
    }
    mon::ScreenState st;
    st.now_unix_ms = unix_ms_now();
    st.error = sh.error;
    print_plain(mon::render(sh.snap, sh.log, st, 80, 24));
    return 0;
  }
  std::thread poller(poll_loop, socket, interval, std::ref(sh));
  initscr();
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  curs_set(0);
  timeout(200);  // redraw at least 5 times a second (the clock, new looks)
  const bool colour = has_colors();
  if (colour) {
    start_color();
    use_default_colors();
    init_pair(1, COLOR_GREEN, -1);
    init_pair(2, COLOR_YELLOW, -1);
    init_pair(3, COLOR_RED, -1);
    init_pair(4, COLOR_BLUE, -1);
    init_pair(5, COLOR_MAGENTA, -1);
    init_pair(6, COLOR_CYAN, -1);
    init_pair(7, COLOR_YELLOW, -1);
  }
  mon::ScreenState st;
  mon::View before_help = mon::View::kNodes;
  for (;;) {
    mon::Frame f;
    {
      std::lock_guard lk(sh.mu);
      st.now_unix_ms = unix_ms_now();
      st.error = sh.error;
      f = mon::render(sh.snap, sh.log, st, COLS, LINES);
    }
    st.page = f.page;
    draw(f, colour);
    const int ch = getch();
    if (!on_key(ch, st, before_help)) break;
  }
  endwin();
  {
    std::lock_guard lk(sh.mu);
    sh.stop = true;
  }
  sh.wake.notify_all();
  poller.join();
  return 0;
}

}  // namespace

void add_mon_commands(CLI::App& app, GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand("mon", "Live monitor of the cluster: node loads and memory, jobs, migrations");
  auto interval = std::make_shared<double>(1.0);
  auto once = std::make_shared<bool>(false);
  cmd->add_option("--interval", *interval, "Seconds between two looks at the cluster")
      ->check(CLI::Range(0.2, 60.0))
      ->capture_default_str();
  cmd->add_flag("--once", *once, "Print one screen as text and exit (also when stdout is not a terminal)");
  cmd->footer(
      "\nKeys: n nodes, g grid (large clusters), j jobs (s sort, r reverse), PgUp/PgDn pages, ? help, q quit.");
  cmd->callback([&global, exit_code, interval, once] { *exit_code = run_monitor(global.socket_path, *interval, *once); });
}

}  // namespace osmo::cli
