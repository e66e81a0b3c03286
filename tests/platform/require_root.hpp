// SPDX-License-Identifier: GPL-2.0-or-later
// Root-only tests: outside CI they skip with a reason; under CI=true not being root is a failure,
// because CI must run them (see tests/lib/skip.sh for the script equivalent).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#define OSMO_REQUIRE_ROOT(what)                                      \
  do {                                                               \
    if (::geteuid() != 0) {                                          \
      const char* ci = std::getenv("CI");                            \
      if (ci != nullptr && std::string_view(ci) == "true") {         \
        FAIL() << what << " needs root, and CI must run it";         \
      }                                                              \
      GTEST_SKIP() << what << " needs root (run as root, or in CI)"; \
    }                                                                \
  } while (0)
