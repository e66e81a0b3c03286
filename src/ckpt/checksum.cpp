// SPDX-License-Identifier: GPL-2.0-or-later
// Chooses the checksum implementation for this CPU once (see checksum.hpp).
#include "ckpt/checksum.hpp"

namespace osmo::ckpt {
namespace {

const checksum_detail::Impl& impl() {
  static const checksum_detail::Impl& chosen =
      __builtin_cpu_supports("avx2") ? checksum_detail::kAvx2 : checksum_detail::kSse2;
  return chosen;
}

}  // namespace

std::uint64_t checksum64(const void* data, std::size_t n) { return impl().oneshot(data, n); }

Checksum::Checksum() { impl().reset(state_); }
void Checksum::update(const void* data, std::size_t n) { impl().update(state_, data, n); }
std::uint64_t Checksum::digest() const { return impl().digest(state_); }

}  // namespace osmo::ckpt
