// SPDX-License-Identifier: GPL-2.0-or-later
// The modes of osmo-migrate-bench (migrate_bench.cpp dispatches) and the small helpers they share:
// sizes with binary suffixes, the monotonic clock, anonymous mappings that unmap themselves.
#pragma once

#include <sys/mman.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/result.hpp"

namespace osmo::bench {

// `job SIZE [DIRTY_MB_PER_S] [--seconds N]`: the process that run.sh migrates (job.cpp).
int job_main(int argc, char** argv);
// `recv PORT SIZE [--count N] [--fresh]` and `send HOST PORT SIZE [--count N]`: the baseline
// (tcp_copy.cpp).
int recv_main(int argc, char** argv);
int send_main(int argc, char** argv);

// "4096", "64M", "1G", "4GiB": bytes, binary suffixes (K, M, G, T, optionally followed by "iB").
Result<std::uint64_t> parse_size(std::string_view s);
// A non-negative decimal number (unsigned, no sign, no suffix) for counts, ports and rates.
Result<std::uint64_t> parse_count(std::string_view s, std::string_view what);

inline double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A private anonymous mapping, unmapped when it goes out of scope.
class Mapping {
 public:
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(Mapping&& o) noexcept
      : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      reset();
      addr_ = std::exchange(o.addr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~Mapping() { reset(); }

  // `extra_flags`: MAP_POPULATE to take the page faults now rather than on first touch.
  static Result<Mapping> anonymous(std::size_t size, int extra_flags = 0) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags,
                   -1, 0);
    if (p == MAP_FAILED) return errno_error("mmap of {} bytes of anonymous memory", size);
    Mapping m;
    m.addr_ = p;
    m.size_ = size;
    return m;
  }

  std::uint64_t* words() const { return static_cast<std::uint64_t*>(addr_); }
  char* bytes() const { return static_cast<char*>(addr_); }
  std::size_t size() const { return size_; }

  void reset() {
    if (addr_ != nullptr) munmap(addr_, size_);
    addr_ = nullptr;
    size_ = 0;
  }

 private:
  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace osmo::bench
