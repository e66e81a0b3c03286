// SPDX-License-Identifier: GPL-2.0-or-later
// The bytes every mode of osmo-migrate-bench works with: page P at generation G holds a xorshift64
// stream seeded from (P, G). The data is non-zero in every word (xorshift never yields 0), does not
// compress (no page resembles another, so neither zero-page detection nor LZ4 can shrink what a
// migration has to carry), and can be regenerated anywhere, so the job checks its own memory and
// the TCP receiver checks what it got without a second copy to compare with.
#pragma once

#include <cstddef>
#include <cstdint>

namespace osmo::bench {

// splitmix64's finalizer: spreads (page, generation) over the whole seed space.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline std::uint64_t page_seed(std::uint64_t page, std::uint32_t generation) {
  const std::uint64_t s = mix64(page * 0xD1B54A32D192ED03ull ^ mix64(generation));
  return s != 0 ? s : 1;  // xorshift's only forbidden state
}

inline std::uint64_t xorshift64(std::uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

// Writes page `page` at `generation` into `words` (page_bytes / 8 of them).
inline void fill_page(std::uint64_t* words, std::size_t nwords, std::uint64_t page,
                      std::uint32_t generation) {
  std::uint64_t x = page_seed(page, generation);
  for (std::size_t i = 0; i < nwords; ++i) words[i] = xorshift64(x);
}

// Compares page `page` with what `generation` wrote. Returns the index of the first word that
// differs, or nwords when all match; `fold` accumulates a checksum of the words read.
inline std::size_t check_page(const std::uint64_t* words, std::size_t nwords, std::uint64_t page,
                              std::uint32_t generation, std::uint64_t& fold) {
  std::uint64_t x = page_seed(page, generation);
  for (std::size_t i = 0; i < nwords; ++i) {
    const std::uint64_t want = xorshift64(x);
    if (words[i] != want) return i;
    fold = (fold << 5 | fold >> 59) ^ words[i];
  }
  return nwords;
}

}  // namespace osmo::bench
