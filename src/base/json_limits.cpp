// SPDX-License-Identifier: GPL-2.0-or-later
// JSON nesting limit (see json_limits.hpp).
#include "base/json_limits.hpp"

namespace osmo {

Status check_json_depth(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return make_error("JSON nests deeper than {} levels (at byte {})", max_depth, i);
    } else if (c == ']' || c == '}') {
      if (depth > 0) --depth;
    }
  }
  return ok_status();
}

}  // namespace osmo
