// SPDX-License-Identifier: GPL-2.0-or-later
// Small, exact readers and writers for procfs, sysfs and cgroupfs files. These files are short
// text; every failure names the path and carries errno, so callers can pass errors straight up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace osmo::platform {

// Whole file as text (procfs files report size 0, so this reads until EOF).
Result<std::string> read_text_file(const std::string& path);
// The file's text without surrounding whitespace.
Result<std::string> read_trimmed(const std::string& path);
// The file holds one unsigned decimal number (surrounding whitespace allowed).
Result<std::uint64_t> read_u64_file(const std::string& path);
// Writes `text` with a single write(2), as cgroupfs requires (a split write is two commands).
Status write_text_file(const std::string& path, std::string_view text);

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);

// Names of the entries of a directory (without "." and ".."); only_dirs keeps subdirectories.
Result<std::vector<std::string>> list_directory(const std::string& path, bool only_dirs);

std::string_view trim(std::string_view s);
// Parses a whole string as an unsigned / signed decimal number.
bool parse_u64(std::string_view s, std::uint64_t* out);
bool parse_i64(std::string_view s, std::int64_t* out);

}  // namespace osmo::platform
