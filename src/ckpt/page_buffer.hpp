// SPDX-License-Identifier: GPL-2.0-or-later
// Page-aligned, pre-faulted buffers for streaming page data and blobs.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace osmo::ckpt {

// MAP_POPULATE: first-touch faults cost ~12 µs per page on this VM, so a buffer of several MiB
// faulted page by page would cost tens of ms by itself.
struct PageBuffer {
  std::uint8_t* p = nullptr;
  std::size_t n = 0;
  explicit PageBuffer(std::size_t bytes) : n(bytes) {
    void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    p = m == MAP_FAILED ? nullptr : static_cast<std::uint8_t*>(m);
  }
  ~PageBuffer() {
    if (p != nullptr) ::munmap(p, n);
  }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;
};

inline bool page_is_zero(const std::uint8_t* p, std::size_t page_size) {
  const auto* w = reinterpret_cast<const std::uint64_t*>(p);
  for (std::size_t i = 0; i < page_size / 8; i += 8) {
    if ((w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7]) != 0) return false;
  }
  return true;
}

}  // namespace osmo::ckpt
