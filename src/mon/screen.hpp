// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo mon`'s screen as lines of text with tones, for any terminal size: the node bars, the
// compact grid for big clusters, the job table, the help, the event log and the key line. Pure
// (no ncurses here), so the tests check what each view shows at 80x24 and at other sizes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mon/model.hpp"

namespace osmo::mon {

enum class View { kNodes, kGrid, kJobs, kHelp };

// What a piece of text means; mon_cli.cpp maps tones to colours (or to bold/plain without them).
enum class Tone { kPlain, kTitle, kHeader, kAlive, kSuspect, kDead, kLeft, kDraining, kBarLoad, kBarMem, kDim, kError };

struct Segment {
  std::string text;
  Tone tone = Tone::kPlain;
};
using Line = std::vector<Segment>;

struct ScreenState {
  View view = View::kNodes;
  int page = 0;  // clamped by render()
  JobSort sort = JobSort::kCpu;
  bool reverse = false;
  std::string error;         // the last failed look, shown in the key line
  std::int64_t now_unix_ms = 0;
};

struct Frame {
  std::vector<Line> lines;  // at most `height`, each at most `width` columns
  int pages = 1;            // of the current view
  int page = 0;             // the page shown (state.page clamped)
};

Frame render(const Snapshot& snap, const EventLog& log, const ScreenState& state, int width, int height);

// Tone of a node state ("alive", "suspect", "dead", "left", "draining").
Tone tone_of_state(const std::string& state);

// The text of a frame's line (tests, and terminals without colour).
std::string text_of(const Line& line);

}  // namespace osmo::mon
