// SPDX-License-Identifier: GPL-2.0-or-later
// Post-copy's page traffic between the two shepherds, after the job already runs at the target
// (docs/migration.md, "Post-copy"). On the same sealed migration stream as everything else:
//
//   target -> source  kData: page requests, 16 bytes each: u32 image pid, u32 pages, u64 address
//                     (the pages a fault needs, and a few after them)
//                     kMessage {"t":"pages-in", faults, ...}: every page is in (or the job
//                     ended); the source may kill its frozen original
//   source -> target  kData: u32 image pid, u32 pages (<= kLazyChunkPages), u64 address,
//                     one byte per page (0: its 4096 bytes follow, 1: a zero page), the data
//                     kMessage {"t":"pages-done", pushed, requested}: every lazy page was sent
//
// The source (serve_lazy_pages) answers requests first and pushes every other lazy page in the
// background, reading them from the frozen original; the target (fetch_lazy_pages) reads the
// faults of each restored process's userfaultfd, asks for their pages and installs whatever
// arrives. Processes are named by their pid in the image, so one stream serves a whole tree.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "ckpt/lazy_pages.hpp"
#include "wire/sealed_stream.hpp"

namespace osmo::migrate {

// Pages per page chunk: header, flags and data fit a sealed chunk (256 KiB).
inline constexpr std::uint32_t kLazyChunkPages = 63;
// Pages asked for per fault: the faulting one and the next ones (a job often walks its memory).
inline constexpr std::uint32_t kFaultPrefetchPages = 16;
static_assert(16 + kLazyChunkPages * (1 + 4096) <= wire::kMaxChunkPayload, "a page chunk must fit a sealed chunk");

// One frozen original's pages still to send.
struct HeldPages {
  std::int32_t image_pid = 0;
  pid_t pid = -1;  // the held original, readable with process_vm_readv
  std::vector<ckpt::PageRun> runs;
};

// Source: sends every lazy page of `held` (requested ones first) and returns once the target
// said every page is in: {pushed, requested, zero_pages, bytes, ms, target: {...}}. An error
// when the stream fails (a send that makes no progress within the socket's send timeout, the
// target gone) or the target stays silent for answer_ms after the last page.
Result<nlohmann::json> serve_lazy_pages(int fd, wire::ChunkSealer& sealer, wire::ChunkOpener& opener,
                                        const std::vector<HeldPages>& held, int answer_ms);

// Target: serves the faults of every process in `lazy` until the source sent every page, then
// unregisters the ranges and tells the source. Returns {faults, requested, installed, zero,
// ms}. Returns early (ok, "ended": true) when the processes are gone (the job ended), or when
// *stop is set. An error when the stream fails or brings nothing for silence_ms: the pages
// still missing are then lost, and the caller must kill the job.
Result<nlohmann::json> fetch_lazy_pages(int fd, wire::ChunkSealer& sealer, wire::ChunkOpener& opener,
                                        ckpt::LazyPages& lazy, int silence_ms, const std::atomic<bool>* stop);

}  // namespace osmo::migrate
