// SPDX-License-Identifier: GPL-2.0-or-later
// osmo-migrate-bench: the programs bench/migrate/run.sh runs inside the testbed's nodes.
//   job SIZE [DIRTY_MB_PER_S] [--seconds N]   the process that gets migrated (job.cpp)
//   recv PORT SIZE [--count N] [--fresh]      baseline receiver: times the copy (tcp_copy.cpp)
//   send HOST PORT SIZE [--count N]           baseline sender
// SIZE takes binary suffixes (64M, 1G, 4G). This file only dispatches and parses numbers.
#include <charconv>
#include <cstdio>
#include <string_view>

#include "modes.hpp"

namespace osmo::bench {

Result<std::uint64_t> parse_count(std::string_view s, std::string_view what) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size())
    return make_error("{} must be a non-negative whole number, got \"{}\"", what, s);
  return v;
}

Result<std::uint64_t> parse_size(std::string_view s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end == s.data())
    return make_error("SIZE must be a number of bytes with an optional K/M/G/T suffix, got \"{}\"",
                      s);
  std::string_view suffix(end, static_cast<std::size_t>(s.data() + s.size() - end));
  int shift = 0;
  if (!suffix.empty()) {
    switch (suffix.front()) {
      case 'K':
      case 'k':
        shift = 10;
        break;
      case 'M':
      case 'm':
        shift = 20;
        break;
      case 'G':
      case 'g':
        shift = 30;
        break;
      case 'T':
      case 't':
        shift = 40;
        break;
      default:
        shift = -1;
    }
    suffix.remove_prefix(1);
    if (shift < 0 || !(suffix.empty() || suffix == "iB" || suffix == "B"))
      return make_error("SIZE \"{}\": unknown suffix (use K, M, G or T, binary)", s);
  }
  if (shift > 0 && v > (~std::uint64_t{0} >> shift))
    return make_error("SIZE \"{}\" does not fit in 64 bits", s);
  v <<= shift;
  if (v == 0) return make_error("SIZE must be more than 0 bytes");
  return v;
}

}  // namespace osmo::bench

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "job") return osmo::bench::job_main(argc - 2, argv + 2);
  if (mode == "recv") return osmo::bench::recv_main(argc - 2, argv + 2);
  if (mode == "send") return osmo::bench::send_main(argc - 2, argv + 2);
  std::fprintf(stderr,
               "usage: %s job SIZE [DIRTY_MB_PER_S] [--seconds N]\n"
               "       %s recv PORT SIZE [--count N] [--fresh]\n"
               "       %s send HOST PORT SIZE [--count N]\n"
               "SIZE: bytes, or with a binary suffix: 64M, 1G, 4G\n",
               argv[0], argv[0], argv[0]);
  return 2;
}
