// SPDX-License-Identifier: GPL-2.0-or-later
// Checksums of the image format: XXH3-64 (docs/image-format.md). Every header and every payload
// of an image is checksummed, so a checksum pass touches as many bytes as the image holds; with
// CRC-32C it cost ~0.17 s per GiB here, more than reading the process's memory. XXH3 runs at
// memory speed with AVX2 (~0.04 s per GiB). The AVX2 and the SSE2 builds compute the same
// function; the first is used when the CPU has AVX2.
#pragma once

#include <cstddef>
#include <cstdint>

namespace osmo::ckpt {

// One-shot checksum of a buffer.
std::uint64_t checksum64(const void* data, std::size_t n);

// The same checksum over several pieces, as if they were one buffer.
class Checksum {
 public:
  Checksum();
  void update(const void* data, std::size_t n);
  std::uint64_t digest() const;

 private:
  // Room for an XXH3_state_t (checked in checksum_xxh3.inc), which wants 64-byte alignment.
  alignas(64) unsigned char state_[640];
};

namespace checksum_detail {
// One implementation of the checksum, compiled for one instruction set.
struct Impl {
  std::uint64_t (*oneshot)(const void*, std::size_t);
  void (*reset)(void* state);
  void (*update)(void* state, const void*, std::size_t);
  std::uint64_t (*digest)(const void* state);
  std::size_t state_size;
};
extern const Impl kAvx2;
extern const Impl kSse2;
}  // namespace checksum_detail

}  // namespace osmo::ckpt
