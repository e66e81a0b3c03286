// SPDX-License-Identifier: GPL-2.0-or-later
// The engine's image bytes on the migration stream, with nothing in between: a sink that seals
// chunks straight from the engine's buffers onto the socket (ckpt::ImageSink) and a source that
// opens them straight into the restore's buffers (ckpt::ImageSource). They replace a pipe and a
// sealing thread at the source and a socket pair and an opening thread at the target: two
// copies of every byte and two thread hand-offs less. Every guarantee of the sealed stream
// stays (wire/sealed_stream.hpp): each chunk authenticated before any of its bytes is used,
// sequence numbers, the image ends with a kEnd chunk. A failure of the link (a send that makes
// no progress within the socket's send timeout, a damaged chunk, the stream shut down by the
// target's daemon watch) is returned to the engine by the very call that met it, so the engine
// stops at once and resumes the job (source) or drops what it built (target).
#pragma once

#include <cstdint>

#include "ckpt/image.hpp"
#include "wire/sealed_stream.hpp"

namespace osmo::migrate {

class SealingSink final : public ckpt::ImageSink {
 public:
  SealingSink(int fd, wire::ChunkSealer& sealer) : fd_(fd), sealer_(sealer) {}
  Status write(const iovec* iov, std::size_t n) override;
  // Ends the image's byte stream (the kEnd chunk) once the engine wrote all of it.
  Status finish();
  std::uint64_t bytes() const { return bytes_; }
  // The first error the link gave (the engine's own error then only says it could not write).
  const Status& link_status() const { return link_; }

 private:
  int fd_;
  wire::ChunkSealer& sealer_;
  std::uint64_t bytes_ = 0;
  Status link_ = ok_status();
};

class OpeningSource final : public ckpt::ImageSource {
 public:
  OpeningSource(int fd, wire::ChunkOpener& opener) : fd_(fd), opener_(opener) {}
  Result<std::size_t> read(void* p, std::size_t n) override;
  // After the restore read the image up to its END section: the byte stream must end there.
  Status finish();
  std::uint64_t bytes() const { return bytes_; }
  // The first error the stream gave (damaged chunk, cut link), as opposed to a restore that
  // gave up by itself.
  const Status& link_status() const { return link_; }

 private:
  int fd_;
  wire::ChunkOpener& opener_;
  std::uint64_t bytes_ = 0;
  Status link_ = ok_status();
};

}  // namespace osmo::migrate
