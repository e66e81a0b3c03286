// SPDX-License-Identifier: GPL-2.0-or-later
// The OSMO_FAULT check (see fault.hpp).
#include "base/fault.hpp"

#include <cstdlib>

namespace osmo {

bool fault_armed(std::string_view name) {
  const char* env = std::getenv("OSMO_FAULT");
  if (env == nullptr || *env == '\0') return false;
  std::string_view list = env;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    if (list.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace osmo
