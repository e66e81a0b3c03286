// SPDX-License-Identifier: GPL-2.0-or-later
// Pre-copy's page traffic (docs/migration.md, "Pre-copy"): while the job still runs at the
// source, its memory goes to the target in rounds over the sealed migration stream, each round
// only the pages the job wrote since the previous one (ckpt::DirtyTracker, one per process of
// the job's tree). When the rounds stop (precopy_plan.hpp) the job is frozen and the image is
// written without the pages the target holds unchanged (CheckpointOptions::precopied); the
// target's restore takes those from its page store (RestoreOptions::page_store).
//
//   source -> target  kMessage {"t":"precopy-round", round}       a round begins
//                     kData: u32 image pid, u32 pages (<= kPrecopyChunkPages), u64 address,
//                            one byte per page (0: its 4096 bytes follow, 1: a zero page), data
//                     kMessage {"t":"precopy-end", rounds, pages}  the image follows
//
// The source counts exactly what it sent (PrecopySource::held), so both sides agree on what the
// target holds without being told: the image carries every held page that changed since it was
// sent, even an all-zero one, and the restore fills from the store only what the image did not.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/dirty_pages.hpp"
#include "migrate/precopy_plan.hpp"
#include "wire/sealed_stream.hpp"

namespace osmo::migrate {

inline constexpr std::uint32_t kPrecopyChunkPages = 63;
static_assert(16 + kPrecopyChunkPages * (1 + 4096) <= wire::kMaxChunkPayload, "a page chunk must fit a sealed chunk");

namespace msg {
inline constexpr const char* kMethod = "method";              // {method, reason}: how the job moves
inline constexpr const char* kPrecopyRound = "precopy-round";  // {round}: a round of pages follows
inline constexpr const char* kPrecopyEnd = "precopy-end";      // {rounds, pages}: the image follows
}  // namespace msg

// The source's side: the job's processes with their write trackers and what went out.
class PrecopySource {
 public:
  // Arms write tracking in every live process of the job (job_pid and the other descendants of
  // its init, the job's PID 1). A process that appears later is not tracked: its pages simply
  // all go with the image.
  static Result<std::unique_ptr<PrecopySource>> start(pid_t job_pid);

  std::size_t processes() const { return procs_.size(); }
  // Present pages of the tracked memory now (pagemap), in bytes.
  Result<std::uint64_t> present_bytes();
  // Pages written since the last collect, without sending them (auto's probe), in bytes.
  Result<std::uint64_t> probe_written_bytes();
  // Sends rounds until `budget` says freeze: the first round all present tracked pages, then
  // each round what was written meanwhile. Returns {rounds, pages, bytes, ms, reason, per_round}.
  Result<nlohmann::json> run_rounds(int fd, wire::ChunkSealer& sealer, const PrecopyBudget& budget);
  // The dump's question for process `pid` (stopped by now): one last collect; what the target
  // holds and which of it is still clean.
  Result<ckpt::PrecopiedPages> precopied(pid_t pid);

 private:
  struct Proc {
    pid_t pid = -1;
    std::int32_t image_pid = 0;
    ckpt::DirtyTracker tracker;
    std::vector<ckpt::PageRange> held;   // pages the target holds (sent in some round), coalesced
    std::vector<ckpt::PageRange> stale;  // pages written since their last send and not sent again
    bool gone = false;  // exited or called exec: no more rounds; its held pages are never clean
  };
  Result<std::uint64_t> send_pages(int fd, wire::ChunkSealer& sealer, Proc& p, const std::vector<ckpt::PageRange>& ranges);
  std::vector<Proc> procs_;
};

// The target's side: every page that came, by image pid and address (the latest copy wins).
class PageStoreMemory final : public ckpt::PageStore {
 public:
  std::vector<ckpt::PageRun> runs(std::int32_t image_pid) const override;
  const std::uint8_t* page(std::int32_t image_pid, std::uint64_t addr) const override;
  // One kData chunk of a round; refuses a malformed one.
  Status take_chunk(const std::vector<std::uint8_t>& payload);
  std::uint64_t pages() const { return pages_; }
  void clear();

 private:
  std::uint8_t* slot(std::int32_t image_pid, std::uint64_t addr);
  std::map<std::int32_t, std::map<std::uint64_t, std::uint32_t>> index_;  // pid -> addr -> slot
  std::vector<std::unique_ptr<std::uint8_t[]>> blocks_;  // slots of 4096 bytes, kSlotsPerBlock each
  std::uint64_t pages_ = 0;
};

// Target: reads pre-copy rounds from the stream into `store` up to precopy-end (returns its
// message). An abort from the source, a damaged chunk or a malformed one is an error.
Result<nlohmann::json> receive_precopy(int fd, wire::ChunkOpener& opener, PageStoreMemory& store);

}  // namespace osmo::migrate
