// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo mon`'s layout (see screen.hpp). Every line is cut to the terminal's width; rows that do
// not fit go to further pages rather than off the screen.
#include "mon/screen.hpp"

#include <time.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace osmo::mon {

namespace {

constexpr int kGridCell = 14;  // "name     1.25 " in the compact grid

std::string clock_of(std::int64_t unix_ms) {
  time_t t = static_cast<time_t>(unix_ms / 1000);
  tm local{};
  ::localtime_r(&t, &local);
  return fmt::format("{:02}:{:02}:{:02}", local.tm_hour, local.tm_min, local.tm_sec);
}

std::string fit(const std::string& s, std::size_t width) {
  if (s.size() <= width) return s + std::string(width - s.size(), ' ');
  return s.substr(0, width);
}

std::string bar(double fraction, int width) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int full = static_cast<int>(std::lround(fraction * width));
  return std::string(full, '#') + std::string(width - full, '.');
}

// Cuts a line to `width` columns (segments are ASCII).
Line clip(Line line, int width) {
  Line out;
  int left = width;
  for (auto& s : line) {
    if (left <= 0) break;
    if (static_cast<int>(s.text.size()) > left) s.text.resize(left);
    left -= static_cast<int>(s.text.size());
    out.push_back(std::move(s));
  }
  return out;
}

Line title_line(const Snapshot& snap, const ScreenState& st) {
  int alive = 0, suspect = 0, dead = 0, left = 0, draining = 0;
  for (const auto& n : snap.nodes) {
    if (n.state == "alive") ++alive;
    else if (n.state == "suspect") ++suspect;
    else if (n.state == "dead") ++dead;
    else if (n.state == "left") ++left;
    else if (n.state == "draining") ++draining;
  }
  Line l{{"osmo mon  ", Tone::kTitle}, {fmt::format("{} nodes: ", snap.nodes.size()), Tone::kPlain},
         {fmt::format("{} alive", alive), Tone::kAlive}};
  if (draining) l.push_back({fmt::format(", {} draining", draining), Tone::kDraining});
  if (suspect) l.push_back({fmt::format(", {} suspect", suspect), Tone::kSuspect});
  if (dead) l.push_back({fmt::format(", {} dead", dead), Tone::kDead});
  if (left) l.push_back({fmt::format(", {} left", left), Tone::kLeft});
  std::int64_t jobs = 0;
  for (const auto& n : snap.nodes) jobs += n.jobs;
  l.push_back({fmt::format("  jobs {}  {}", snap.have_jobs ? static_cast<std::int64_t>(snap.jobs.size()) : jobs,
                           clock_of(st.now_unix_ms)),
               Tone::kPlain});
  return l;
}

Line key_line(const ScreenState& st, int page, int pages) {
  Line l{{"q", Tone::kTitle}, {" quit  ", Tone::kPlain}, {"?", Tone::kTitle}, {" help  ", Tone::kPlain},
         {"n", Tone::kTitle}, {" nodes  ", Tone::kPlain}, {"g", Tone::kTitle}, {" grid  ", Tone::kPlain},
         {"j", Tone::kTitle}, {" jobs  ", Tone::kPlain}};
  if (st.view == View::kJobs)
    l.push_back({fmt::format("s sort:{}{}  ", to_string(st.sort), st.reverse ? " (r)" : ""), Tone::kPlain});
  if (pages > 1) l.push_back({fmt::format("page {}/{} (PgUp/PgDn)  ", page + 1, pages), Tone::kPlain});
  if (!st.error.empty()) l.push_back({st.error, Tone::kError});
  return l;
}

Line node_line(const NodeRow& n, double load_scale) {
  Line l;
  l.push_back({fit(n.name + (n.self ? "*" : ""), 10) + " ", Tone::kPlain});
  l.push_back({fit(n.state, 9) + " ", tone_of_state(n.state)});
  const bool gone = n.state == "dead" || n.state == "left";
  if (n.load && !gone) {
    l.push_back({"[" + bar(*n.load / load_scale, 16) + "]", Tone::kBarLoad});
    l.push_back({fmt::format(" {:5.2f} ", *n.load), Tone::kPlain});
  } else {
    l.push_back({"[" + std::string(16, ' ') + "]     - ", Tone::kDim});
  }
  if (n.mem_total_mb > 0 && !gone) {
    const double used = 1.0 - static_cast<double>(n.mem_free_mb) / static_cast<double>(n.mem_total_mb);
    l.push_back({"[" + bar(used, 10) + "]", Tone::kBarMem});
    l.push_back({fmt::format(" {:3.0f}% ", used * 100.0), Tone::kPlain});
  } else {
    l.push_back({"[" + std::string(10, ' ') + "]    - ", Tone::kDim});
  }
  l.push_back({fit(n.cpus > 0 ? fmt::format("{:g}x{:.1f}", n.cpus, n.speed) : "-", 8), Tone::kPlain});
  l.push_back({fmt::format("{:>5}", n.jobs), Tone::kPlain});
  return l;
}

Line job_line(const JobRow& j) {
  return Line{{fmt::format("{:<12} {:<10} {:<10} {:<9} {:>8.1f} {:>7.1f} {:>3} ", j.id.substr(0, 12),
                           j.node.substr(0, 10), j.home.substr(0, 10), j.state.substr(0, 9), j.cpu_s,
                           j.rss_mb, j.migrations),
               Tone::kPlain},
              {j.cmd, Tone::kPlain}};
}

// Splits `rows` into pages of `per_page`; returns the slice of page `*page` (clamped).
template <typename T>
std::vector<T> page_of(const std::vector<T>& rows, int per_page, int* page, int* pages) {
  per_page = std::max(per_page, 1);
  *pages = std::max(1, static_cast<int>((rows.size() + per_page - 1) / per_page));
  *page = std::clamp(*page, 0, *pages - 1);
  auto begin = rows.begin() + std::min<std::size_t>(rows.size(), static_cast<std::size_t>(*page) * per_page);
  auto end = rows.begin() + std::min<std::size_t>(rows.size(), static_cast<std::size_t>(*page + 1) * per_page);
  return std::vector<T>(begin, end);
}

std::vector<Line> help_lines() {
  const char* keys[][2] = {
      {"n", "nodes: one line per node, load and memory bars (* marks this node)"},
      {"g", "grid: many nodes at once, name and load, coloured by state"},
      {"j", "jobs: every job of the cluster, like a live osmo ps"},
      {"s", "jobs: sort by the next key (cpu, memory, node, id, migrations, age)"},
      {"r", "jobs: reverse the order"},
      {"PgDn/space", "next page"},
      {"PgUp/b", "previous page"},
      {"?", "this help; any key returns"},
      {"q", "quit"},
  };
  std::vector<Line> out{{{"Keys", Tone::kHeader}}};
  for (const auto& k : keys) out.push_back(Line{{fmt::format("  {:<11}", k[0]), Tone::kTitle}, {k[1], Tone::kPlain}});
  out.push_back({});
  out.push_back({{"Load is each node's runnable demand over its capacity (cpus x speed), as gossiped;", Tone::kDim}});
  out.push_back({{"the bars share one scale (the busiest node, at least 1.0). Events are what changed", Tone::kDim}});
  out.push_back({{"between two looks of this monitor.", Tone::kDim}});
  return out;
}

}  // namespace

Tone tone_of_state(const std::string& state) {
  if (state == "alive") return Tone::kAlive;
  if (state == "suspect") return Tone::kSuspect;
  if (state == "dead") return Tone::kDead;
  if (state == "left") return Tone::kLeft;
  if (state == "draining") return Tone::kDraining;
  return Tone::kPlain;
}

std::string text_of(const Line& line) {
  std::string s;
  for (const auto& seg : line) s += seg.text;
  return s;
}

Frame render(const Snapshot& snap, const EventLog& log, const ScreenState& st, int width, int height) {
  Frame f;
  if (width <= 0 || height <= 0) return f;
  // Rows: title, body, an event log when there is room (it shrinks first on small terminals),
  // and the key line.
  const int log_rows = height >= 20 ? 6 : height >= 12 ? 3 : 0;  // one of them is its rule
  const int body_rows = std::max(0, height - 2 - log_rows);
  std::vector<Line> body;
  int page = st.page;
  int pages = 1;
  switch (st.view) {
    case View::kNodes: {
      body.push_back({{fmt::format("{:<11}{:<10}{:<25}{:<18}{:<8}{:>5}", "NODE", "STATE", "LOAD", "MEMORY USED",
                                   "CAPACITY", "JOBS"),
                       Tone::kHeader}});
      double scale = 1.0;
      for (const auto& n : snap.nodes)
        if (n.load && n.state != "dead" && n.state != "left") scale = std::max(scale, *n.load);
      for (const auto& n : page_of(snap.nodes, body_rows - 1, &page, &pages)) body.push_back(node_line(n, scale));
      break;
    }
    case View::kGrid: {
      const int per_row = std::max(1, width / kGridCell);
      std::vector<Line> rows;
      for (std::size_t i = 0; i < snap.nodes.size(); i += per_row) {
        Line l;
        for (std::size_t k = i; k < std::min(snap.nodes.size(), i + per_row); ++k) {
          const auto& n = snap.nodes[k];
          const std::string load = n.load && n.state != "dead" && n.state != "left" ? fmt::format("{:.2f}", *n.load) : "-";
          std::string name = n.name.substr(0, kGridCell - 1 - load.size() - 1);
          l.push_back({fit(name, kGridCell - 1 - load.size()) + load + " ", tone_of_state(n.state)});
        }
        rows.push_back(std::move(l));
      }
      for (auto& l : page_of(rows, body_rows, &page, &pages)) body.push_back(std::move(l));
      break;
    }
    case View::kJobs: {
      body.push_back({{fmt::format("{:<12} {:<10} {:<10} {:<9} {:>8} {:>7} {:>3} {}", "ID", "NODE", "HOME", "STATE",
                                   "CPU_S", "RSS_MB", "MIG", "CMD"),
                       Tone::kHeader}});
      std::vector<JobRow> jobs = snap.jobs;
      sort_jobs(jobs, st.sort, st.reverse);
      if (!snap.have_jobs) body.push_back({{"(asking every node for its jobs...)", Tone::kDim}});
      for (const auto& j : page_of(jobs, body_rows - 1, &page, &pages)) body.push_back(job_line(j));
      break;
    }
    case View::kHelp:
      body = help_lines();
      break;
  }
  f.lines.push_back(clip(title_line(snap, st), width));
  for (int i = 0; i < body_rows; ++i)
    f.lines.push_back(i < static_cast<int>(body.size()) ? clip(std::move(body[i]), width) : Line{});
  if (log_rows > 0) {
    const std::string rule = "-- recent events ";
    f.lines.push_back({{rule + std::string(std::max(0, width - static_cast<int>(rule.size())), '-'), Tone::kDim}});
    const auto& ev = log.events();
    const int shown = log_rows - 1;
    const std::size_t first = ev.size() > static_cast<std::size_t>(shown) ? ev.size() - shown : 0;
    int used = 0;
    for (std::size_t i = first; i < ev.size(); ++i, ++used)
      f.lines.push_back(clip({{clock_of(ev[i].unix_ms) + " ", Tone::kDim}, {ev[i].text, Tone::kPlain}}, width));
    for (; used < shown; ++used) f.lines.push_back({});
  }
  f.lines.push_back(clip(key_line(st, page, pages), width));
  f.lines.resize(std::min<std::size_t>(f.lines.size(), static_cast<std::size_t>(height)));
  f.pages = pages;
  f.page = page;
  return f;
}

}  // namespace osmo::mon
