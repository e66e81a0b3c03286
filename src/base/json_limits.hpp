// SPDX-License-Identifier: GPL-2.0-or-later
// Limits checked on JSON text before it is parsed. A parser builds (and later destroys) one
// nested value per bracket; a request of 100,000 opening brackets costs it memory and time for
// nothing, and some code walking the result recurses. So every JSON that comes from another node
// or a local user is scanned once, in linear time and constant memory, and refused when it nests
// deeper than its protocol ever needs.
#pragma once

#include <string_view>

#include "base/result.hpp"

namespace osmo {

// Deepest nesting of arrays and objects any osmo request uses (a job spec: spec -> env -> ... is
// 4); 64 leaves room for growth and is far below what could hurt.
inline constexpr int kMaxJsonDepth = 64;

// Refuses `text` if its arrays and objects nest deeper than max_depth (brackets inside strings,
// escapes included, do not count). Says nothing about the rest of the syntax: the parser does.
Status check_json_depth(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace osmo
